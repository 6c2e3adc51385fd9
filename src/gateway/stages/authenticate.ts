/** Stage: verify the end user's JWT when the route asks for it (auth: required / optional). */
import { authUnavailable, invalidToken, missingToken } from '../../auth/errors.ts';
import { extractToken } from '../../auth/token.ts';
import type { Stage } from '../context.ts';

export const authenticate: Stage = async (ctx) => {
  const auth = ctx.hit!.route.auth;
  if (!auth) return undefined;
  const found = extractToken(ctx.request.headers, auth.token);
  if (found.kind === 'none') return auth.mode === 'optional' ? undefined : missingToken(ctx.requestId);
  if (found.kind === 'malformed') return invalidToken(ctx.requestId, 'malformed token');
  const result = await ctx.runtime.auth.verify(ctx.plan.auth, found.token, auth.issuers, ctx.io);
  if (!result.ok) {
    return result.status === 503
      ? authUnavailable(ctx.requestId, result.description)
      : invalidToken(ctx.requestId, result.description);
  }
  ctx.user = result.user;
  return undefined;
};
