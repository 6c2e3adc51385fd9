/** Stage: the authenticated user must hold the route's scopes and claim values. */
import { claimSatisfied } from '../../auth/claims.ts';
import { forbidden, insufficientScope } from '../../auth/errors.ts';
import type { Stage } from '../context.ts';

export const authorize: Stage = (ctx) => {
  const auth = ctx.hit!.route.auth;
  const user = ctx.user;
  if (!auth || !user) return undefined;
  if (auth.scopes.length > 0) {
    const missing = auth.scopes.filter((s) => !user.scopes.includes(s));
    if (missing.length > 0) return insufficientScope(ctx.requestId, missing, auth.scopes);
  }
  for (const req of auth.claims) {
    if (!claimSatisfied(user.claims, req))
      return forbidden(ctx.requestId, `claim "${req.name}" does not have an accepted value`);
  }
  return undefined;
};
