/**
 * The registry's state, and how state written by an earlier meshwork is read.
 *
 * Applied configs are indexed (`configs`) apart from their bundles: a bundle can be megabytes,
 * so only the ones needed (the one in force, one just applied) are held in `bundles`; the rest
 * stay in storage (storage.ts) until a rollback asks for one.
 */
import type { MeshBundle } from '../../config/schema.ts';
import type { AppliedConfig, AuditEntry, ConfigEntry, Instance } from '../../registry/types.ts';
import { upgradeInstance } from '../../registry/types.ts';

export interface RegistryState {
  /** By endpoint key. */
  instances: Record<string, Instance>;
  configs: ConfigEntry[];
  /** Bundles held in memory, by revision (the one in force always). */
  bundles: Map<number, MeshBundle>;
  head: number;
  /** Config revisions in force, in order: what "the previous config" means for rollback. */
  heads: number[];
  revision: number;
  /** Random, fixed for the life of this registry's storage: a reset is told apart from an old revision. */
  epoch: string;
  /**
   * When the config in force came into force: with the revision after `after`, at `at`. A
   * snapshot of revision `after` or older carries an earlier config (registry/source.ts).
   */
  configSince: { after: number; at: number };
  audit: AuditEntry[];
}

export function freshState(): RegistryState {
  return {
    instances: {},
    configs: [],
    bundles: new Map(),
    head: 0,
    heads: [0],
    revision: 0,
    epoch: crypto.randomUUID(),
    configSince: { after: -1, at: 0 },
    audit: [],
  };
}

/**
 * For state stored before configSince was: the config counts as in force since the revision
 * stored, from now on (so snapshots older than that revision are refused once KV has caught up).
 */
export const sinceLoad = (revision: number, now: number) => ({ after: revision - 1, at: now });

/**
 * A copy a change can be made on: the containers are new, their items shared. Items are never
 * changed in place (a changed record is a new object), so the state in force is untouched until
 * the change is stored and the copy takes its place.
 */
export function draftOf(s: RegistryState): RegistryState {
  return {
    ...s,
    instances: { ...s.instances },
    configs: [...s.configs],
    bundles: new Map(s.bundles),
    heads: [...s.heads],
    audit: [...s.audit],
  };
}

/** The whole state as one value, as meshwork stored it before storage.ts (one `state` key). */
export interface LegacyState {
  instances: Record<string, Instance>;
  configs: AppliedConfig[];
  head: number;
  heads?: number[];
  revision: number;
  epoch: string;
  audit: AuditEntry[];
}

export function bundleBytes(bundle: MeshBundle): number {
  return JSON.stringify(bundle).length;
}

/** Legacy state in today's form (records get endpoint keys: registry/types.ts upgradeInstance). */
export function fromLegacy(saved: LegacyState): RegistryState {
  const state = freshState();
  state.revision = saved.revision;
  state.epoch = saved.epoch;
  state.configSince = sinceLoad(saved.revision, Date.now());
  state.head = saved.head;
  state.heads = saved.heads ?? [saved.head];
  state.audit = saved.audit ?? [];
  for (const c of saved.configs ?? []) {
    const { bundle, ...entry } = c;
    state.configs.push({ ...entry, version: bundle.version, bytes: bundleBytes(bundle) });
    state.bundles.set(c.revision, bundle);
  }
  state.instances = upgradeInstances(saved.instances ?? {}).instances;
  return state;
}

/** Records from before endpoint keys get theirs; `upgraded` says whether any did. */
export function upgradeInstances(records: Record<string, Instance>): {
  instances: Record<string, Instance>;
  upgraded: boolean;
} {
  const instances: Record<string, Instance> = {};
  let upgraded = false;
  for (const inst of Object.values(records)) {
    const now = upgradeInstance(inst);
    if (now !== inst) upgraded = true;
    instances[now.id] = now;
  }
  return { instances, upgraded };
}
