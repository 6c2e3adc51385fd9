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

export interface EndpointSet {
  /** Endpoints with their weights, in rotation (what an overlay starts from). */
  readonly weighted: ReadonlyArray<Weighted<Endpoint>>;
  /** Split across every endpoint by weight. */
  readonly picker: WeightedPicker<Endpoint>;
  /** Split within one version (a version may have several endpoints). */
  readonly byVersion: ReadonlyMap<string, WeightedPicker<Endpoint>>;
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
  const versions = new Map<string, Array<Weighted<Endpoint>>>();
  for (const w of weighted) {
    if (w.item.version === undefined) continue;
    let list = versions.get(w.item.version);
    if (!list) versions.set(w.item.version, (list = []));
    list.push(w);
  }
  // Pinning a version is an explicit choice, so a version whose weights are all 0 (dark
  // launched: no default traffic) is still reachable when pinned, split evenly.
  const pinned = (list: Array<Weighted<Endpoint>>) =>
    list.every((w) => w.weight === 0) ? list.map((w) => ({ item: w.item, weight: 1 })) : list;
  return {
    weighted,
    picker: new WeightedPicker(weighted),
    byVersion: new Map([...versions].map(([v, list]) => [v, new WeightedPicker(pinned(list))])),
  };
}

/** An endpoint for a call to a service, optionally pinned to a version; undefined = none in rotation. */
export function pickEndpoint(
  set: EndpointSet,
  version: string | undefined,
  random?: () => number,
): Endpoint | undefined {
  const picker = version === undefined ? set.picker : set.byVersion.get(version);
  return picker?.pick(random);
}
