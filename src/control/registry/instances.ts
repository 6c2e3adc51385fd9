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

/**
 * A service's heartbeat: creates its record or keeps it alive. Returns whether routing changes
 * (a new record, or one coming back from expiry), which needs a new published revision.
 */
export function heartbeat(s: RegistryState, info: InstanceInfo, now: number): { instance: Instance; routing: boolean } {
  const id = instanceKey(info);
  const prior = s.instances[id];
  const wasActive = prior?.status === 'active';
  // In place: a probe running meanwhile holds this object and records its result on it.
  const instance: Instance = prior
    ? Object.assign(prior, info, { lastHeartbeat: now, status: 'active' as const })
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
      inst.status = 'expired';
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
