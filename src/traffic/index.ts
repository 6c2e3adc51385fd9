/**
 * The one outbound call path. The gateway's forward stage and a service's `mesh.fetch` both end
 * here; neither builds an outbound request itself.
 */
import { errorResponse } from '../core/errors.ts';
import type { OutboundCall } from './call.ts';

export type { CallSource, CallUser, Layer, OutboundCall, Send, TrafficPlan, TrafficService } from './call.ts';

/** Calls `call.service` through its stack; a service the config does not know is a 503. */
export function callService(call: OutboundCall): Promise<Response> {
  const service = call.plan.services.get(call.service);
  if (!service) {
    return Promise.resolve(
      errorResponse(503, 'unknown_service', `service "${call.service}" is not in the mesh`, call.requestId),
    );
  }
  call.target = service;
  const own = call.source.kind === 'edge' ? call.source.route.policy : undefined;
  // A route's timeouts or retry replace its service's as wholes (traffic/policy.ts).
  call.policy = own ? { ...service.traffic.defaults, ...own } : service.traffic.defaults;
  return service.stack(call);
}
