/**
 * Layer: the headers only the mesh sets. Request id and trace context for the next hop; the
 * caller's identity token for the target service; the user, as the gateway's signed assertion
 * (minted at the gateway, passed on unchanged by services) with the configured claim headers;
 * at the edge, the route that matched. From the gateway to a service that may call on no other,
 * the identity token carries the user too (an edge token, identity/tokens.ts): one header and one
 * signature fewer per hop.
 *
 * Tokens are minted once and reused until shortly before they expire, so nearly every call takes
 * the synchronous path: no signature and no promise.
 */
import { claimHeaders } from '../../auth/claims.ts';
import { errorResponse } from '../../core/errors.ts';
import { IDENTITY_HEADER, REQUEST_ID_HEADER, ROUTE_HEADER, USER_HEADER } from '../../core/headers.ts';
import { KeysUnavailable } from '../../core/keys.ts';
import { logEvent } from '../../core/log.ts';
import { randomHex, setTraceHeaders } from '../../core/trace.ts';
import type { IdentityMinter, UserAudience } from '../../identity/tokens.ts';
import type { VerifiedUser } from '../../core/user.ts';
import { callerOf, type Layer, type OutboundCall, type Send } from '../call.ts';

/** Who the gateway's assertion of the user is for: this service and those it may call on. */
function audienceOf(call: OutboundCall): UserAudience {
  return call.plan.userAudiences.get(call.service) ?? { services: [call.service], key: call.service };
}

/** The user the gateway verified, when one edge token carries them (the target can call on no other). */
function edgeUser(call: OutboundCall): VerifiedUser | undefined {
  const user = call.user;
  return user && 'verified' in user && audienceOf(call).services.length === 1 ? user.verified : undefined;
}

/** The user's claim headers, and the assertion unless the edge token carries the user. */
function setUser(call: OutboundCall, headers: Headers, assertion: string | undefined): void {
  if (assertion !== undefined) headers.set(USER_HEADER, assertion);
  const user = call.user!;
  const claims =
    'verified' in user
      ? call.runtime.claimHeadersOf(user.verified, call.plan.claimHeaders)
      : claimHeaders(user.asserted, call.plan.claimHeaders);
  for (const [name, value] of claims) headers.set(name, value);
}

/** Mints what the cache does not have (the first call to a target, or near expiry). */
async function signThenSend(
  call: OutboundCall,
  minter: IdentityMinter,
  headers: Headers,
  next: Send,
): Promise<Response> {
  try {
    const user = call.user;
    const edge = edgeUser(call);
    if (edge) {
      headers.set(IDENTITY_HEADER, await minter.edgeIdentity(edge, call.service, call.env));
      setUser(call, headers, undefined);
    } else {
      headers.set(IDENTITY_HEADER, await minter.identityFor(call.service, call.env));
      if (user)
        setUser(
          call,
          headers,
          'verified' in user ? await minter.userAssertion(user.verified, audienceOf(call), call.env) : user.assertion,
        );
    }
  } catch (e) {
    if (!(e instanceof KeysUnavailable)) throw e;
    const caller = callerOf(call);
    logEvent('error', 'mesh signing key unavailable', { requestId: call.requestId, caller, error: e.message });
    const who = caller === 'gateway' ? 'the gateway' : caller;
    return errorResponse(
      500,
      'internal',
      `${who} cannot sign its mesh identity (signing key missing or invalid)`,
      call.requestId,
    );
  }
  return next(call);
}

export const meshHeaders: Layer = (next) => (call) => {
  const headers = call.request!.headers;
  headers.set(REQUEST_ID_HEADER, call.requestId);
  setTraceHeaders(headers, call.trace, call.trySpanId ?? randomHex(8));
  if (call.source.kind === 'edge') headers.set(ROUTE_HEADER, call.source.route.name);
  const { minter } = call.runtime.identity(call.plan.identity);
  const user = call.user;
  const edge = edgeUser(call);
  if (edge) {
    const token = minter.cachedEdgeIdentity(edge, call.service);
    if (token === undefined) return signThenSend(call, minter, headers, next);
    headers.set(IDENTITY_HEADER, token);
    setUser(call, headers, undefined);
    return next(call);
  }
  const identity = minter.cachedIdentity(call.service);
  const assertion =
    user && ('verified' in user ? minter.cachedUserAssertion(user.verified, audienceOf(call)) : user.assertion);
  if (identity === undefined || (user && assertion === undefined)) return signThenSend(call, minter, headers, next);
  headers.set(IDENTITY_HEADER, identity);
  if (user) setUser(call, headers, assertion);
  return next(call);
};
