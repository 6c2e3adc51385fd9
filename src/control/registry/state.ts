/**
 * The registry's persisted state, and how state written by an earlier meshwork is read.
 */
import { WORKER_ENDPOINT, endpointKey, parseEndpointKey } from '../../core/endpoint.ts';
import type { AppliedConfig, AuditEntry, Instance } from '../../registry/types.ts';
import { instanceEndpoint } from '../../registry/types.ts';

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
 * State as stored, brought to the current form. Instances from before endpoint keys were keyed
 * "service@version": they become that version's worker record, or the endpoint their binding or
 * URL names.
 */
export function loadState(saved: Partial<RegistryState> | undefined): RegistryState {
  const state = { ...freshState(), ...saved };
  state.heads = saved?.heads ?? [state.head];
  const instances: Record<string, Instance> = {};
  for (const inst of Object.values(state.instances)) {
    if (parseEndpointKey(inst.id) && inst.endpoint !== undefined) {
      instances[inst.id] = inst;
      continue;
    }
    const endpoint = inst.endpoint ?? (inst.source === 'self' ? WORKER_ENDPOINT : instanceEndpoint(inst));
    const id = endpointKey({ service: inst.service, version: inst.version, endpoint });
    instances[id] = { ...inst, id, endpoint };
  }
  state.instances = instances;
  return state;
}
