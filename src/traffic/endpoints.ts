/**
 * The endpoints of each service, as routing sees them: built from the config's backends (once per
 * config) and rebuilt when the registry's instances change which are in rotation.
 */
import { defaultEndpointName, endpointKey } from '../core/endpoint.ts';
import type { BackendSpec } from '../config/schema.ts';
import { WeightedPicker } from './weighted.ts';

interface EndpointBase {
  /** Unique and stable: "<service>@<version>/<name>" (core/endpoint.ts). */
  key: string;
  service: string;
  version: string | undefined;
  name: string;
}

export type Endpoint =
  (EndpointBase & { kind: 'binding'; binding: string }) | (EndpointBase & { kind: 'url'; url: URL });

export interface Weighted<T> {
  item: T;
  weight: number;
}

/** One version's endpoints: what a balancer chooses among (traffic/layers/endpoint.ts). */
export interface EndpointGroup {
  readonly version: string | undefined;
  readonly endpoints: readonly Endpoint[];
  /** Their keys, in the same order. */
  readonly keys: readonly string[];
  /** Relative weights within the version; a pinned version whose weights are all 0 gets 1s. */
  readonly weights: readonly number[];
}

export interface EndpointSet {
  /** Endpoints with their weights, in rotation (what an overlay starts from). */
  readonly weighted: ReadonlyArray<Weighted<Endpoint>>;
  /** Versions by their endpoints' total weight: the canary split of unpinned calls. */
  readonly groups: WeightedPicker<EndpointGroup>;
  /** Each version, for calls pinned to one. */
  readonly byVersion: ReadonlyMap<string, EndpointGroup>;
}

export function endpointOf(
  service: string,
  spec: {
    binding?: string | undefined;
    url?: string | undefined;
    version?: string | undefined;
    name?: string | undefined;
  },
): Endpoint {
  const name = spec.name ?? defaultEndpointName(spec);
  const base = {
    key: endpointKey({ service, version: spec.version, endpoint: name }),
    service,
    version: spec.version,
    name,
  };
  return spec.binding !== undefined
    ? { ...base, kind: 'binding', binding: spec.binding }
    : { ...base, kind: 'url', url: new URL(spec.url!) };
}

export function configEndpoints(service: string, backends: readonly BackendSpec[]): Array<Weighted<Endpoint>> {
  return backends.map((b) => ({ item: endpointOf(service, b), weight: b.weight }));
}

export function endpointSet(weighted: ReadonlyArray<Weighted<Endpoint>>): EndpointSet {
  const versions = new Map<string | undefined, Array<Weighted<Endpoint>>>();
  for (const w of weighted) {
    let list = versions.get(w.item.version);
    if (!list) versions.set(w.item.version, (list = []));
    list.push(w);
  }
  const groups: Array<{ item: EndpointGroup; weight: number }> = [];
  const byVersion = new Map<string, EndpointGroup>();
  for (const [version, list] of versions) {
    const total = list.reduce((n, w) => n + w.weight, 0);
    const group = {
      version,
      endpoints: list.map((w) => w.item),
      keys: list.map((w) => w.item.key),
      weights: list.map((w) => w.weight),
    };
    groups.push({ item: group, weight: total });
    // Pinning a version is an explicit choice, so a version whose weights are all 0 (dark
    // launched: no default traffic) is still reachable when pinned, split evenly.
    if (version !== undefined) byVersion.set(version, total > 0 ? group : { ...group, weights: list.map(() => 1) });
  }
  return { weighted, groups: new WeightedPicker(groups), byVersion };
}

/** The endpoints a call may use: its pinned version's, or a version chosen by weight. */
export function groupFor(
  set: EndpointSet,
  version: string | undefined,
  random?: () => number,
): EndpointGroup | undefined {
  return version === undefined ? set.groups.pick(random) : set.byVersion.get(version);
}

/** An endpoint by weight alone (no balancer state): for tests and tools. */
export function pickEndpoint(
  set: EndpointSet,
  version: string | undefined,
  random: () => number = Math.random,
): Endpoint | undefined {
  const group = groupFor(set, version, random);
  if (!group) return undefined;
  return new WeightedPicker(group.endpoints.map((item, i) => ({ item, weight: group.weights[i]! }))).pick(random);
}
