/**
 * Every header name meshwork sets or reserves, and the header handling shared by the gateway and
 * the wrapper: one place, so a new x-mesh-* header cannot be forgotten in a strip list.
 */

/** Reserved for meshwork: stripped from every client request at the gateway, set only by the mesh. */
export const MESH_HEADER_PREFIX = 'x-mesh-';
/** Who is calling: the caller's signed identity token (identity/tokens.ts). */
export const IDENTITY_HEADER = 'x-mesh-identity';
/** The end user the gateway verified: its signed user assertion. */
export const USER_HEADER = 'x-mesh-user';
/** Name of the route that matched at the gateway. */
export const ROUTE_HEADER = 'x-mesh-route';
/** On responses: the config version that routed the request. */
export const CONFIG_VERSION_HEADER = 'x-mesh-config-version';
export const REQUEST_ID_HEADER = 'x-request-id';
export const TRACEPARENT_HEADER = 'traceparent';
export const TRACESTATE_HEADER = 'tracestate';
/** Set by Cloudflare's edge to the client's address. */
export const CLIENT_IP_HEADER = 'cf-connecting-ip';
/** Sent by the CLI to label the audit log (a label; the admin token is the proof). */
export const ACTOR_HEADER = 'x-meshwork-actor';

/** Default claim headers: verified claims to backends (auth.claimHeaders). */
export const DEFAULT_CLAIM_HEADERS: Readonly<Record<string, string>> = {
  sub: 'x-mesh-sub',
  scopes: 'x-mesh-scopes',
  iss: 'x-mesh-issuer',
};

/** RFC 9110 section 7.6.1 connection-specific fields, plus the legacy proxy ones. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Removes, in place, hop-by-hop fields and any the Connection header names. With `stripMesh`,
 * also every x-mesh-* header, so a client can never assert mesh identity. A WebSocket
 * handshake keeps its Upgrade header: workerd needs it to proxy the socket.
 *
 * Works on a Headers object the runtime has already copied (a new Request's or Response's):
 * every Headers call crosses into the runtime, so one pass over the names beats building
 * a new set header by header.
 */
export function stripHopByHop(headers: Headers, stripMesh = false, alsoDrop?: ReadonlySet<string>): void {
  let keepUpgrade = false;
  let connection: string | undefined;
  const drop: string[] = [];
  // One pass over name and value: each Headers call crosses into the runtime.
  for (const [name, value] of headers) {
    if (HOP_BY_HOP.has(name)) {
      if (name === 'connection') connection = value;
      if (name === 'upgrade' && value.toLowerCase() === 'websocket') keepUpgrade = true;
      else drop.push(name);
    } else if ((stripMesh && name.startsWith(MESH_HEADER_PREFIX)) || alsoDrop?.has(name)) {
      drop.push(name);
    }
  }
  if (connection !== undefined) {
    for (const listed of connection.split(',')) {
      const name = listed.trim().toLowerCase();
      if (name && !(keepUpgrade && name === 'upgrade')) drop.push(name);
    }
  }
  for (const name of drop) headers.delete(name);
}

/**
 * Forwarding headers the gateway does not set: a client could send them to mislead a service
 * about its address or the public URL, so they are dropped at the edge.
 */
export const CLIENT_FORWARDING: ReadonlySet<string> = new Set([
  'forwarded',
  'x-real-ip',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-server',
]);

/**
 * Records how the client reached the gateway (after the CLIENT_FORWARDING headers were dropped
 * by stripHopByHop). X-Forwarded-For gets the client address
 * (CF-Connecting-IP, which Cloudflare sets and clients cannot forge) appended: only that last
 * entry is trustworthy, earlier ones are whatever the client sent.
 */
export function setForwarded(headers: Headers, url: URL, clientIp: string | null): void {
  if (clientIp) {
    const prior = headers.get('x-forwarded-for');
    headers.set('x-forwarded-for', prior ? `${prior}, ${clientIp}` : clientIp);
  }
  headers.set('x-forwarded-proto', url.protocol.slice(0, -1));
  headers.set('x-forwarded-host', url.host);
}

/**
 * Header names a claim may not be written to: the mesh's own, credentials, hop-by-hop and
 * framing fields, and what the gateway sets for tracing and forwarding.
 */
export const RESERVED_CLAIM_HEADERS: ReadonlySet<string> = new Set([
  IDENTITY_HEADER,
  USER_HEADER,
  ROUTE_HEADER,
  CONFIG_VERSION_HEADER,
  'authorization',
  'cookie',
  'set-cookie',
  'host',
  'content-length',
  'content-type',
  'content-encoding',
  REQUEST_ID_HEADER,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  CLIENT_IP_HEADER,
  ...HOP_BY_HOP,
  ...CLIENT_FORWARDING,
]);

/**
 * Adds headers to a response. `append` keeps what the response already has (a service's own
 * RateLimit fields stay when the gateway adds its own); `set` replaces. A response whose headers
 * are immutable (from fetch) is copied first; a WebSocket upgrade is returned as it is.
 */
export function withHeaders(
  response: Response,
  pairs: ReadonlyArray<readonly [string, string]>,
  mode: 'append' | 'set',
): Response {
  if (pairs.length === 0 || response.status === 101) return response;
  let out = response;
  try {
    for (const [name, value] of pairs) out.headers[mode](name, value);
  } catch {
    out = new Response(response.body, response);
    for (const [name, value] of pairs) out.headers[mode](name, value);
  }
  return out;
}
