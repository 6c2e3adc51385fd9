/**
 * Routing with the registry's view laid over the config: which endpoints are in rotation.
 *
 *  - A config endpoint with a registry record of its own (same key) is in rotation only while
 *    that record is active and not unhealthy.
 *  - Otherwise, once its version's worker has registered (the record "<service>@<version>/worker"
 *    its heartbeat keeps alive), it follows that record: a version that stops heartbeating or
 *    fails its probe leaves rotation.
 *  - With neither, it is static: in rotation, as before there was a registry.
 *  - A registered endpoint with its own binding or URL that the config does not list is added
 *    (weight from its registration, default 1).
 *
 * The same views feed the admin API's status, so what status says is what routing does.
 */
import { versionKey, WORKER_ENDPOINT } from '../core/endpoint.ts';
import { errorText, logEvent } from '../core/log.ts';
import type { ServicePlan } from '../plan/compile.ts';
import { endpointOf, endpointSet, type Endpoint, type Weighted } from '../traffic/endpoints.ts';
import type { Instance } from './types.ts';

export function inRotation(i: Instance): boolean {
  return i.status === 'active' && i.health !== 'unhealthy';
}

export interface EndpointView {
  endpoint: Endpoint;
  weight: number;
  /** The record that decides its rotation, if any (its own, or its version's worker). */
  record: Instance | undefined;
  inRotation: boolean;
  /** From the config's backends, or added by a registration. */
  origin: 'config' | 'registry';
}

/** Every endpoint of a service, config and registered, with what decides its rotation. */
export function endpointViews(svc: ServicePlan, instances: readonly Instance[]): EndpointView[] {
  const mine = instances.filter((i) => i.service === svc.name);
  const byKey = new Map(mine.map((i) => [i.id, i]));
  const worker = new Map(
    mine.filter((i) => i.endpoint === WORKER_ENDPOINT).map((i) => [versionKey(i.service, i.version), i]),
  );
  const views: EndpointView[] = [];
  for (const w of svc.configured.weighted) {
    const record = byKey.get(w.item.key) ?? worker.get(versionKey(w.item.service, w.item.version));
    views.push({
      endpoint: w.item,
      weight: w.weight,
      record,
      inRotation: !record || inRotation(record),
      origin: 'config',
    });
  }
  const configured = new Set(svc.configured.weighted.map((w) => w.item.key));
  for (const inst of mine) {
    if ((!inst.binding && !inst.url) || configured.has(inst.id)) continue;
    let endpoint: Endpoint;
    try {
      endpoint = endpointOf(inst.service, { ...inst, name: inst.endpoint });
    } catch (e) {
      // A record no endpoint can be made of stays out of rotation; it never stops routing.
      logEvent('warn', 'registry record skipped', { endpoint: inst.id, error: errorText(e) });
      continue;
    }
    views.push({ endpoint, weight: inst.weight ?? 1, record: inst, inRotation: inRotation(inst), origin: 'registry' });
  }
  return views;
}

export function overlayService(svc: ServicePlan, instances: readonly Instance[]): ServicePlan {
  if (!instances.some((i) => i.service === svc.name)) return svc;
  const weighted: Array<Weighted<Endpoint>> = endpointViews(svc, instances)
    .filter((v) => v.inRotation)
    .map((v) => ({ item: v.endpoint, weight: v.weight }));
  return { ...svc, endpoints: endpointSet(weighted) };
}
