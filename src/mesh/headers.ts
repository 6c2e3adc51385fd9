/**
 * Header handling shared by the gateway and the wrapper's mesh client.
 */

/** Reserved for meshwork: stripped from every client request at the gateway, set only by the mesh. */
export const MESH_HEADER_PREFIX = 'x-mesh-';
/** Who made this call: "gateway" or the calling service's name. */
export const CALLER_HEADER = 'x-mesh-caller';
/** Name of the route that matched at the gateway. */
export const ROUTE_HEADER = 'x-mesh-route';
export const REQUEST_ID_HEADER = 'x-request-id';

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

function isWebSocketUpgrade(headers: Headers): boolean {
  return headers.get('upgrade')?.toLowerCase() === 'websocket';
}

/**
 * Copies headers minus hop-by-hop fields (and any the Connection header names). With
 * `stripMesh`, also drops every x-mesh-* header so a client can never assert mesh identity.
 * A WebSocket upgrade keeps its Upgrade header: workerd needs it to proxy the socket.
 */
export function endToEndHeaders(source: Headers, stripMesh: boolean): Headers {
  const out = new Headers(source);
  const drop: string[] = [];
  const listed = source.get('connection');
  if (listed) for (const name of listed.split(',')) drop.push(name.trim().toLowerCase());
  for (const name of out.keys()) {
    if (HOP_BY_HOP.has(name) || (stripMesh && name.startsWith(MESH_HEADER_PREFIX))) drop.push(name);
  }
  const keepUpgrade = isWebSocketUpgrade(source);
  for (const name of drop) if (!(keepUpgrade && name === 'upgrade')) out.delete(name);
  return out;
}

/** Appends the client to X-Forwarded-For and records the original proto and host. */
export function setForwarded(headers: Headers, url: URL, clientIp: string | null): void {
  if (clientIp) {
    const prior = headers.get('x-forwarded-for');
    headers.set('x-forwarded-for', prior ? `${prior}, ${clientIp}` : clientIp);
  }
  headers.set('x-forwarded-proto', url.protocol.slice(0, -1));
  headers.set('x-forwarded-host', url.host);
}
