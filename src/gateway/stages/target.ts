/**
 * Stage: choose where the request goes (service and version, by the route's weights, or by the
 * sticky value's fixed point) and the upstream path.
 */
import { errorResponse } from '../../core/errors.ts';
import { rewritePath } from '../../plan/compile.ts';
import { requestValue, unitOf } from '../../traffic/policy.ts';
import type { Stage } from '../context.ts';

export const chooseTarget: Stage = (ctx) => {
  const hit = ctx.hit!;
  const { sticky } = hit.route;
  const value = sticky && requestValue(sticky, ctx.request.headers, ctx.user?.claims);
  // Sticky: the value's fixed point picks the target here and the version in the call path.
  const unit = value === undefined ? undefined : unitOf(value);
  const target = hit.route.targets.pick(unit === undefined ? undefined : () => unit);
  // The version within the target gets a point of its own: one shared with the target choice
  // would send only the low end of each target's share to its first versions.
  if (value !== undefined) ctx.stickyUnit = unitOf(`${value}\u0000version`);
  if (!target)
    return errorResponse(
      503,
      'no_backend',
      `route "${hit.route.name}" has no backend with a weight above 0`,
      ctx.requestId,
    );
  ctx.target = target;
  ctx.upstreamPath = rewritePath(hit, ctx.path);
  return undefined;
};
