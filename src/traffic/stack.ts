/**
 * The outbound stack, built once per service when a config is compiled:
 *
 *   observe -> relay -> deadline -> retries -> choose endpoint (balance, eject, cap, try timeout)
 *         -> build request -> mesh headers -> send
 *
 * The gateway and `mesh.fetch` get each of them once, from the same config (docs/traffic.md).
 */
import type { ServiceSpec } from '../config/schema.ts';
import { compose, type Layer, type Send } from './call.ts';
import { chooseEndpoint } from './layers/endpoint.ts';
import { meshHeaders } from './layers/mesh-headers.ts';
import { deadline } from './layers/deadline.ts';
import { observe } from './layers/observe.ts';
import { relay } from './layers/relay.ts';
import { retries } from './layers/retry.ts';
import { buildRequest } from './layers/request.ts';
import { send } from './layers/send.ts';

export function serviceStack(_spec: ServiceSpec): Send {
  const layers: Layer[] = [observe, relay, deadline, retries, chooseEndpoint, buildRequest, meshHeaders];
  return compose(layers, send);
}
