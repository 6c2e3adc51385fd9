/**
 * Header handling shared by the gateway, the wrapper and the outbound call path. The names
 * themselves are in header-names.ts (re-exported here).
 */
import { carryMeshError } from './errors.ts';
import { MESH_HEADER_PREFIX } from './header-names.ts';

export * from './header-names.ts';

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
 * Adds headers to a response. `append` keeps what the response already has (a service's own
 * RateLimit fields stay when the gateway adds its own); `set` replaces. The response is changed in
 * place when its headers may be changed, and copied (keeping a WebSocket) when they may not (a
 * response straight from fetch or a binding).
 */
export function withHeaders(
  response: Response,
  pairs: ReadonlyArray<readonly [string, string]>,
  mode: 'append' | 'set',
): Response {
  if (pairs.length === 0) return response;
  try {
    for (const [name, value] of pairs) response.headers[mode](name, value);
    return response;
  } catch {
    // Immutable headers refuse the first change, so nothing was changed yet.
    const copy =
      response.status === 101 && response.webSocket
        ? new Response(null, { status: 101, webSocket: response.webSocket, headers: response.headers })
        : new Response(response.body, response);
    for (const [name, value] of pairs) copy.headers[mode](name, value);
    return carryMeshError(response, copy);
  }
}
