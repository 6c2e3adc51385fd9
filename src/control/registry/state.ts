/**
 * The registry's persisted state, and how state written by an earlier meshwork is read.
 */
import type { AppliedConfig, AuditEntry, Instance } from '../../registry/types.ts';
import { upgradeInstance } from '../../registry/types.ts';

export interface RegistryState {
  /** By endpoint key. */
  instances: Record<string, Instance>;
  configs: AppliedConfig[];
  head: number;
  /** Config revisions in force, in order: what "the previous config" means for rollback. */
  heads: number[];
  revision: number;
  /** Random, fixed for the life of this registry's storage: a reset is told apart from an old revision. */
  epoch: string;
  audit: AuditEntry[];
}

export function freshState(): RegistryState {
  return { instances: {}, configs: [], head: 0, heads: [0], revision: 0, epoch: crypto.randomUUID(), audit: [] };
}

/**
 * State as stored, brought to the current form (records from before endpoint keys get theirs:
 * registry/types.ts upgradeInstance). `upgraded` says whether anything changed, so the registry
 * can publish the new form at once rather than at its next change.
 */
export function loadState(saved: Partial<RegistryState> | undefined): { state: RegistryState; upgraded: boolean } {
  const state = { ...freshState(), ...saved };
  state.heads = saved?.heads ?? [state.head];
  const instances: Record<string, Instance> = {};
  let upgraded = false;
  for (const inst of Object.values(state.instances)) {
    const now = upgradeInstance(inst);
    if (now !== inst) upgraded = true;
    instances[now.id] = now;
  }
  state.instances = instances;
  return { state, upgraded };
}
