/**
 * Layer: the headers only the mesh sets. Request id and trace context for the next hop; the
 * caller's identity token for the target service; the user, as the gateway's signed assertion
 * (minted at the gateway, passed on unchanged by services) with the configured claim headers;
 * at the edge, the route that matched.
 */
import { claimHeaders } from '../../auth/claims.ts';
import { errorResponse } from '../../core/errors.ts';
import { IDENTITY_HEADER, REQUEST_ID_HEADER, ROUTE_HEADER, USER_HEADER } from '../../core/headers.ts';
import { KeysUnavailable } from '../../core/keys.ts';
import { logEvent } from '../../core/log.ts';
import { setTraceHeaders } from '../../core/trace.ts';
import { callerOf, type Layer, type OutboundCall } from '../call.ts';

async function sign(call: OutboundCall, headers: Headers): Promise<void> {
  const { minter } = call.runtime.identity(call.plan.identity);
  headers.set(IDENTITY_HEADER, await minter.identityFor(call.service, call.env));
  const user = call.user;
  if (!user) return;
  if ('verified' in user) {
    headers.set(USER_HEADER, await minter.userAssertion(user.verified, call.env));
    for (const [name, value] of call.runtime.claimHeadersOf(user.verified, call.plan.claimHeaders))
      headers.set(name, value);
  } else {
    headers.set(USER_HEADER, user.assertion);
    for (const [name, value] of claimHeaders(user.asserted, call.plan.claimHeaders)) headers.set(name, value);
  }
}

export const meshHeaders: Layer = (next) => async (call) => {
  const headers = call.request!.headers;
  headers.set(REQUEST_ID_HEADER, call.requestId);
  setTraceHeaders(headers, call.trace);
  if (call.source.kind === 'edge') headers.set(ROUTE_HEADER, call.source.route.name);
  try {
    await sign(call, headers);
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
};
