/**
 * Reaching an endpoint: a service binding (an in-process call to another worker) or a URL.
 */
import { fetcherOf, type MeshBindings } from '../core/bindings.ts';
import { carryMeshError } from '../core/errors.ts';
import { REQUEST_ID_HEADER, stripHopByHop } from '../core/headers.ts';
import type { Endpoint } from './endpoints.ts';

export interface Upstream {
  fetch(request: Request, init?: { signal: AbortSignal }): Promise<Response>;
}

const internet: Upstream = { fetch: (request, init) => fetch(request, init) };

/** The binding (or the internet, for URL endpoints); undefined if the binding is not bound here. */
export function upstreamFor(env: MeshBindings, endpoint: Endpoint): Upstream | undefined {
  return endpoint.kind === 'url' ? internet : fetcherOf(env, endpoint.binding);
}

/**
 * Where to send the request. Over a binding the URL's host is not used for routing, so the
 * caller's origin is kept (the service sees the host the client asked for).
 */
export function upstreamUrl(endpoint: Endpoint, origin: string, pathAndQuery: string): string {
  if (endpoint.kind === 'binding') return origin + pathAndQuery;
  const base = endpoint.url.pathname.endsWith('/') ? endpoint.url.pathname.slice(0, -1) : endpoint.url.pathname;
  return endpoint.url.origin + base + pathAndQuery;
}

/** The backend's response as the caller should see it: streamed, hop-by-hop headers removed. */
export function relayResponse(upstream: Response, requestId: string): Response {
  if (upstream.status === 101 && upstream.webSocket) {
    const headers = new Headers(upstream.headers);
    stripHopByHop(headers);
    headers.set(REQUEST_ID_HEADER, requestId);
    return carryMeshError(upstream, new Response(null, { status: 101, webSocket: upstream.webSocket, headers }));
  }
  // Copying the response natively keeps every Set-Cookie and the status text.
  const response = new Response(upstream.body, upstream);
  stripHopByHop(response.headers);
  response.headers.set(REQUEST_ID_HEADER, requestId);
  return carryMeshError(upstream, response);
}
