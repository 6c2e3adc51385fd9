/**
 * Routing with the registry's view laid over the config: which backends are in rotation.
 *
 *  - A config backend (service S, version V) with no registered instance S@V is static: in
 *    rotation, as before there was a registry.
 *  - Once S@V is registered, it is in rotation only while that instance is active (heartbeating)
 *    and not unhealthy: an instance that stops heartbeating or fails its probe leaves rotation.
 *  - A registered instance with its own binding or URL and no matching config backend is added
 *    as a backend (weight from its registration, default 1).
 */
import type { CompiledBackend, CompiledService } from '../mesh/compile.ts';
import { buildPickers } from '../mesh/compile.ts';
import type { Instance } from './types.ts';
import { instanceId } from './types.ts';

export function inRotation(i: Instance): boolean {
  return i.status === 'active' && i.health !== 'unhealthy';
}

export function overlayService(svc: CompiledService, instances: readonly Instance[]): CompiledService {
  const mine = instances.filter((i) => i.service === svc.name);
  if (mine.length === 0) return svc;
  const byId = new Map(mine.map((i) => [instanceId(i.service, i.version), i]));
  const weighted: Array<{ item: CompiledBackend; weight: number }> = [];
  for (const b of svc.weightedBackends) {
    const inst = byId.get(instanceId(b.item.service, b.item.version));
    if (inst && !inRotation(inst)) continue;
    weighted.push(b);
  }
  for (const inst of mine) {
    if (!inst.binding && !inst.url) continue;
    if (
      svc.weightedBackends.some(
        (b) => instanceId(b.item.service, b.item.version) === instanceId(inst.service, inst.version),
      )
    )
      continue;
    if (!inRotation(inst)) continue;
    const label = instanceId(inst.service, inst.version);
    const item: CompiledBackend = inst.binding
      ? { kind: 'binding', service: inst.service, version: inst.version, label, binding: inst.binding }
      : { kind: 'url', service: inst.service, version: inst.version, label, url: new URL(inst.url!) };
    weighted.push({ item, weight: inst.weight ?? 1 });
  }
  return { ...svc, ...buildPickers(weighted) };
}
