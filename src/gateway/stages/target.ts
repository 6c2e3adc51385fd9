/** Stage: choose where the request goes (service and version, by the route's weights) and the upstream path. */
import { errorResponse } from '../../core/errors.ts';
import { rewritePath } from '../../plan/compile.ts';
import type { Stage } from '../context.ts';

export const chooseTarget: Stage = (ctx) => {
  const hit = ctx.hit!;
  const target = hit.route.targets.pick();
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
