/**
 * Reaching a backend: a service binding (an in-process call to another worker) or a URL.
 */
import type { CompiledBackend } from './compile.ts';
import { stripHopByHop } from './headers.ts';

export interface Upstream {
  fetch(request: Request): Promise<Response>;
}

/** Worker env as the mesh sees it: bindings by name. */
export type MeshEnv = Record<string, unknown>;

const internet: Upstream = { fetch: (request) => fetch(request) };

function isUpstream(value: unknown): value is Upstream {
  return typeof value === 'object' && value !== null && typeof (value as Upstream).fetch === 'function';
}

/** The binding (or the internet, for URL backends); undefined if the binding is not bound here. */
export function upstreamFor(env: MeshEnv, backend: CompiledBackend): Upstream | undefined {
  if (backend.kind === 'url') return internet;
  const bound = env[backend.binding];
  return isUpstream(bound) ? bound : undefined;
}

/**
 * Where to send the request. Over a binding the URL's host is not used for routing, so the
 * original origin is kept and the service sees the host the client asked for.
 */
export function upstreamUrl(backend: CompiledBackend, origin: string, pathAndQuery: string): string {
  if (backend.kind === 'binding') return origin + pathAndQuery;
  const base = backend.url.pathname.endsWith('/') ? backend.url.pathname.slice(0, -1) : backend.url.pathname;
  return backend.url.origin + base + pathAndQuery;
}

/**
 * The request to send upstream: same method, headers (end-to-end ones only, x-mesh-* removed)
 * and body, which is passed on as the incoming stream: nothing is buffered. Callers then set
 * the mesh's own headers on `request.headers`.
 */
export function upstreamRequest(url: string, source: Request, alsoDrop?: ReadonlySet<string>): Request {
  const hasBody = source.method !== 'GET' && source.method !== 'HEAD';
  const request = new Request(url, {
    method: source.method,
    headers: source.headers,
    body: hasBody ? source.body : null,
    redirect: 'manual',
  });
  stripHopByHop(request.headers, true, alsoDrop);
  return request;
}

/** The backend's response as the client should see it: streamed, hop-by-hop headers removed. */
export function relayResponse(upstream: Response, requestId: string): Response {
  if (upstream.status === 101 && upstream.webSocket) {
    const headers = new Headers(upstream.headers);
    stripHopByHop(headers);
    headers.set('x-request-id', requestId);
    return new Response(null, { status: 101, webSocket: upstream.webSocket, headers });
  }
  // Copying the response natively keeps every Set-Cookie and the status text.
  const response = new Response(upstream.body, upstream);
  stripHopByHop(response.headers);
  response.headers.set('x-request-id', requestId);
  return response;
}

/** Structured log line; callers pass only non-secret fields (never headers or tokens). */
export function logEvent(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void {
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}
