/**
 * The outbound stack, built once per service when a config is compiled:
 *
 *   relay -> choose endpoint -> build request -> mesh headers -> send
 *
 * Traffic management (timeouts, retries with budgets, balancing, outlier detection, filters) goes
 * in as further layers here, so the gateway and `mesh.fetch` get each of them once.
 */
import type { ServiceSpec } from '../config/schema.ts';
import { compose, type Layer, type Send } from './call.ts';
import { chooseEndpoint } from './layers/endpoint.ts';
import { meshHeaders } from './layers/mesh-headers.ts';
import { relay } from './layers/relay.ts';
import { buildRequest } from './layers/request.ts';
import { send } from './layers/send.ts';

export function serviceStack(_spec: ServiceSpec): Send {
  const layers: Layer[] = [relay, chooseEndpoint, buildRequest, meshHeaders];
  return compose(layers, send);
}
