/**
 * The wrapper's built-in inbound policies, run before any of the service's own:
 *  1. identify:  the caller must present a valid mesh identity token addressed to this service
 *                (401 otherwise, unless the service allows anonymous callers); the user
 *                comes from the gateway's edge token or a user assertion, which must be
 *                the gateway's (401 otherwise);
 *  2. authorize: the caller must be on the service's allowCallers list (403 otherwise).
 */
import { authUnavailable } from '../auth/errors.ts';
import { claimHeaders } from '../auth/claims.ts';
import { errorResponse } from '../core/errors.ts';
import { IDENTITY_HEADER, MESH_HEADER_PREFIX, USER_HEADER } from '../core/headers.ts';
import { KeysUnavailable, type KeyIo } from '../core/keys.ts';
import type { MeshUser } from '../core/user.ts';
import type { Plan, ServicePlan } from '../plan/compile.ts';
import type { MeshRuntime } from '../runtime/runtime.ts';

/** What the identify step found, written into the request's MeshContext. */
export interface CallerFacts {
  caller: string | undefined;
  user: MeshUser | undefined;
  /** The verified user assertion, passed on unchanged on east-west calls. */
  userAssertion: string | undefined;
}

export async function identify(
  request: Request,
  plan: Plan,
  runtime: MeshRuntime,
  service: ServicePlan,
  io: KeyIo,
  requestId: string,
): Promise<CallerFacts | Response> {
  const { verifier } = runtime.identity(plan.identity);
  try {
    const facts: CallerFacts = { caller: undefined, user: undefined, userAssertion: undefined };
    const identity = request.headers.get(IDENTITY_HEADER);
    if (identity) {
      const r = await verifier.verifyIdentity(identity, service.name, io);
      if (!r.ok) return errorResponse(401, 'invalid_identity', `${r.description} for ${service.name}`, requestId);
      facts.caller = r.caller;
      // The gateway's edge token carries the user itself; the target may call on no other, so
      // there is no assertion to pass along.
      if (r.user) {
        facts.user = r.user;
        return facts;
      }
    } else if (!service.policy.allowAnonymous) {
      return errorResponse(
        401,
        'unauthenticated_caller',
        `${service.name} accepts calls through the mesh only (no mesh identity presented)`,
        requestId,
      );
    }
    const assertion = request.headers.get(USER_HEADER);
    // A user travels only with an identified caller: an anonymous request cannot bring one.
    if (assertion && facts.caller !== undefined) {
      const u = await verifier.verifyUser(assertion, service.name, io);
      if (!u.ok) return errorResponse(401, 'invalid_identity', u.description, requestId);
      facts.user = u.user;
      facts.userAssertion = assertion;
    }
    return facts;
  } catch (e) {
    if (e instanceof KeysUnavailable)
      return authUnavailable(requestId, `${service.name} cannot verify mesh identities: ${e.message}`);
    throw e;
  }
}

export function authorizeCaller(
  service: ServicePlan,
  caller: string | undefined,
  requestId: string,
): Response | undefined {
  const allowed = service.policy.allowCallers;
  if (!allowed || caller === undefined) return undefined;
  if (allowed.has(caller)) return undefined;
  return errorResponse(403, 'forbidden', `caller "${caller}" may not call ${service.name}`, requestId);
}

/**
 * The request as the handler sees it. A caller other than the gateway could send x-mesh-*
 * or claim headers of its own making; they are removed, and the claim headers are set again from
 * the verified user, so a handler that reads x-mesh-sub reads the truth. (The gateway strips
 * client-sent copies and sets these itself, so its requests pass unchanged.)
 */
export function sanitizeInbound(request: Request, plan: Plan, facts: CallerFacts): Request {
  if (facts.caller === 'gateway') return request;
  const spoofable = (name: string) =>
    (name.startsWith(MESH_HEADER_PREFIX) && name !== IDENTITY_HEADER && name !== USER_HEADER) ||
    plan.claimHeaderNames.has(name);
  const drop = [...request.headers.keys()].filter(spoofable);
  if (drop.length === 0 && !facts.user) return request;
  const headers = new Headers(request.headers);
  for (const name of drop) headers.delete(name);
  if (facts.user) for (const [name, value] of claimHeaders(facts.user, plan.claimHeaders)) headers.set(name, value);
  return new Request(request, { headers });
}
