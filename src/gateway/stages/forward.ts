/**
 * Last stage: send the request to the chosen backend and stream its response back. The
 * request carries the gateway's identity token for that service and, when a user was
 * authenticated, the gateway-signed user assertion and the configured claim headers.
 */
import { claimHeaders } from '../../auth/claims.ts';
import { KeysUnavailable } from '../../auth/keys.ts';
import { removeToken } from '../../auth/token.ts';
import type { VerifiedUser } from '../../auth/verify.ts';
import type { CompiledMesh } from '../../mesh/compile.ts';
import { IDENTITY_HEADER, USER_HEADER } from '../../identity/tokens.ts';
import { errorResponse } from '../../mesh/errors.ts';
import { REQUEST_ID_HEADER, ROUTE_HEADER, setForwarded } from '../../mesh/headers.ts';
import { setTraceHeaders } from '../../mesh/trace.ts';
import { logEvent, relayResponse, upstreamFor, upstreamRequest, upstreamUrl } from '../../mesh/upstream.ts';
import type { Stage } from '../context.ts';

/** Claim headers per verified user: the token cache hands back the same user object per token. */
const claimHeaderCache = new WeakMap<
  VerifiedUser,
  { mapping: CompiledMesh['claimHeaders']; headers: Array<[string, string]> }
>();

function claimHeadersOf(user: VerifiedUser, mapping: CompiledMesh['claimHeaders']): Array<[string, string]> {
  const hit = claimHeaderCache.get(user);
  if (hit?.mapping === mapping) return hit.headers;
  const headers = claimHeaders(user, mapping);
  claimHeaderCache.set(user, { mapping, headers });
  return headers;
}

export const forward: Stage = async (ctx) => {
  const { request, url, backend, requestId } = ctx;
  const route = ctx.hit!.route;
  const upstream = upstreamFor(ctx.env, backend!);
  if (!upstream) {
    logEvent('error', 'binding missing', { requestId, route: route.name, backend: backend!.label });
    return errorResponse(503, 'no_backend', `backend ${backend!.label} is not bound in the gateway`, requestId);
  }
  const outbound = upstreamRequest(
    upstreamUrl(backend!, url.origin, ctx.upstreamPath! + url.search),
    request,
    ctx.mesh.gatewayDropped,
  );
  const headers = outbound.headers;
  setForwarded(headers, url, ctx.clientIp);
  headers.set(REQUEST_ID_HEADER, requestId);
  setTraceHeaders(headers, ctx.trace);
  headers.set(ROUTE_HEADER, route.name);
  if (route.auth && !route.auth.forwardToken) removeToken(headers, route.auth.token);
  const { minter } = ctx.mesh.identity;
  try {
    headers.set(IDENTITY_HEADER, await minter.identityFor(backend!.service, ctx.env));
    if (ctx.user) {
      headers.set(USER_HEADER, await minter.userAssertion(ctx.user, ctx.env));
      for (const [name, value] of claimHeadersOf(ctx.user, ctx.mesh.claimHeaders)) headers.set(name, value);
    }
  } catch (e) {
    if (!(e instanceof KeysUnavailable)) throw e;
    logEvent('error', 'mesh signing key unavailable', { requestId, error: e.message });
    return errorResponse(
      500,
      'internal',
      'the gateway cannot sign its mesh identity (signing key missing or invalid)',
      requestId,
    );
  }
  let response: Response;
  try {
    response = await upstream.fetch(outbound);
  } catch (e) {
    logEvent('error', 'backend failed', {
      requestId,
      route: route.name,
      backend: backend!.label,
      error: String((e as Error)?.message ?? e),
    });
    return errorResponse(502, 'bad_gateway', `backend ${backend!.label} failed to answer`, requestId);
  }
  const relayed = relayResponse(response, requestId);
  relayed.headers.set('x-mesh-config-version', ctx.mesh.version);
  // append: a service's own RateLimit fields (east-west limits) stay, the gateway's join them.
  for (const [name, value] of ctx.responseHeaders ?? []) relayed.headers.append(name, value);
  return relayed;
};
