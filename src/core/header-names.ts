/**
 * Every header name meshwork sets or reserves, in one place, so a new x-mesh-* header cannot be
 * forgotten in a strip list. Plain constants: Node code (the CLI) uses them too.
 */

/** Reserved for meshwork: stripped from every client request at the gateway, set only by the mesh. */
export const MESH_HEADER_PREFIX = 'x-mesh-';
/** Who is calling: the caller's signed identity token (identity/tokens.ts). */
export const IDENTITY_HEADER = 'x-mesh-identity';
/** The end user the gateway verified: its signed user assertion. */
export const USER_HEADER = 'x-mesh-user';
/** Name of the route that matched at the gateway. */
export const ROUTE_HEADER = 'x-mesh-route';
/** On responses: the route's fallback answered ("static" or the fallback service), not its backend. */
export const FALLBACK_HEADER = 'x-mesh-fallback';
/** On responses: the config version that routed the request. */
export const CONFIG_VERSION_HEADER = 'x-mesh-config-version';
export const REQUEST_ID_HEADER = 'x-request-id';
export const TRACEPARENT_HEADER = 'traceparent';
export const TRACESTATE_HEADER = 'tracestate';
/** The client's address as the gateway determined it (network.clientIp), for services behind it. */
export const CLIENT_ADDRESS_HEADER = 'x-mesh-client-ip';
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

/**
 * Header names a claim may not be written to: the mesh's own, credentials, hop-by-hop and
 * framing fields, and what the gateway sets for tracing and forwarding. (Kept exactly as it was
 * when configs were first validated against it: a longer list would make applied configs invalid
 * on upgrade.)
 */
export const RESERVED_CLAIM_HEADERS: ReadonlySet<string> = new Set([
  IDENTITY_HEADER,
  USER_HEADER,
  ROUTE_HEADER,
  'authorization',
  'cookie',
  'set-cookie',
  'host',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'content-length',
  'content-type',
  'content-encoding',
  REQUEST_ID_HEADER,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  CLIENT_IP_HEADER,
]);
