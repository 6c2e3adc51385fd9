/**
 * Registry records of endpoints: pure functions of the state and a clock, so expiry and
 * re-registration are tested with an injected time.
 */
import type { Instance, InstanceInfo } from '../../registry/types.ts';
import { instanceEndpoint, instanceKey } from '../../registry/types.ts';
import { audit } from './history.ts';
import type { RegistryState } from './state.ts';

function newRecord(info: InstanceInfo, source: Instance['source'], now: number): Instance {
  return {
    ...info,
    id: instanceKey(info),
    endpoint: instanceEndpoint(info),
    registeredAt: now,
    lastHeartbeat: now,
    status: 'active',
    health: 'unknown',
    source,
  };
}

/** Versions one service may register of itself: beyond, a heartbeat for a new one is refused. */
export const MAX_SELF_VERSIONS = 32;

export type HeartbeatResult = { instance: Instance; routing: boolean } | { refused: string };

/**
 * A service's heartbeat: creates its record or keeps it alive. Returns whether routing changes
 * (a new record, or one coming back from expiry), which needs a new published revision. A
 * service cannot fill the registry with versions of itself: a new one beyond MAX_SELF_VERSIONS
 * is refused (its records that stopped heartbeating can be deregistered).
 */
export function heartbeat(s: RegistryState, info: InstanceInfo, now: number): HeartbeatResult {
  const id = instanceKey(info);
  const prior = s.instances[id];
  if (!prior) {
    const own = Object.values(s.instances).filter((i) => i.source === 'self' && i.service === info.service).length;
    if (own >= MAX_SELF_VERSIONS)
      return { refused: `${info.service} already has ${own} self-registered versions (at most ${MAX_SELF_VERSIONS})` };
  }
  const wasActive = prior?.status === 'active';
  // A new object: records are never changed in place (the state in force stays as it was until
  // the change is stored).
  const instance: Instance = prior
    ? { ...prior, ...info, lastHeartbeat: now, status: 'active' }
    : newRecord(info, 'self', now);
  s.instances[id] = instance;
  if (prior && wasActive) return { instance, routing: false };
  audit(s, now, info.service, 'register', prior ? `${id} is heartbeating again` : `${id} registered itself`);
  return { instance, routing: true };
}

/** An operator registers an endpoint (e.g. a backend outside Workers). It does not expire; probes decide its health. */
export function register(s: RegistryState, info: InstanceInfo, actor: string, now: number): Instance {
  const instance = newRecord(info, 'admin', now);
  const id = instance.id;
  s.instances[id] = instance;
  const where = info.url ? ` at ${info.url}` : info.binding ? ` via ${info.binding}` : '';
  audit(s, now, actor, 'register', `${id} registered${where}`);
  return instance;
}

export function deregister(s: RegistryState, id: string, actor: string, now: number): boolean {
  if (!s.instances[id]) return false;
  delete s.instances[id];
  audit(s, now, actor, 'deregister', `${id} deregistered`);
  return true;
}

/** Self-registered records without a heartbeat within the TTL expire (kept, visible, out of rotation). */
export function expireSilent(s: RegistryState, ttlMs: number, now: number): boolean {
  let changed = false;
  for (const inst of Object.values(s.instances)) {
    if (inst.source === 'self' && inst.status === 'active' && now - inst.lastHeartbeat > ttlMs) {
      s.instances[inst.id] = { ...inst, status: 'expired' };
      audit(
        s,
        now,
        'registry',
        'expire',
        `${inst.id}: no heartbeat for ${Math.round((now - inst.lastHeartbeat) / 1000)}s`,
      );
      changed = true;
    }
  }
  return changed;
}

export interface ProbeResult {
  id: string;
  /** undefined: nothing to probe with (no binding or URL): health is the heartbeats' to say. */
  ok: boolean | undefined;
  detail: string;
}

/**
 * Records the results of probes that ran while the state may have changed: each goes onto the
 * record as it is now (a heartbeat meanwhile is kept), if it still exists. Returns whether any
 * record's health changed.
 */
export function recordProbes(s: RegistryState, results: readonly ProbeResult[], now: number): boolean {
  let changed = false;
  for (const r of results) {
    const inst = s.instances[r.id];
    if (!inst) continue;
    const health = r.ok === undefined ? inst.health : r.ok ? 'healthy' : 'unhealthy';
    s.instances[r.id] = { ...inst, health, lastProbe: { at: now, ok: r.ok === true, detail: r.detail } };
    if (health !== inst.health) {
      audit(s, now, 'registry', 'health', `${inst.id} is ${health} (${r.detail})`);
      changed = true;
    }
  }
  return changed;
}
