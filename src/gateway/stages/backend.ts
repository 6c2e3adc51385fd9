/** Stage: choose the backend (service, version, weighted) and the upstream path. 503 if none. */
import { pickBackend, rewritePath } from '../../mesh/compile.ts';
import { errorResponse } from '../../mesh/errors.ts';
import type { Stage } from '../context.ts';

export const chooseBackend: Stage = (ctx) => {
  const hit = ctx.hit!;
  const choice = hit.route.targets.pick();
  if (!choice)
    return errorResponse(
      503,
      'no_backend',
      `route "${hit.route.name}" has no backend with a weight above 0`,
      ctx.requestId,
    );
  if (!ctx.mesh.services.has(choice.service)) {
    return errorResponse(503, 'unknown_service', `service "${choice.service}" is not in the mesh`, ctx.requestId);
  }
  const backend = pickBackend(ctx.mesh, choice);
  if (!backend) {
    const what = choice.version ? `${choice.service}@${choice.version}` : choice.service;
    return errorResponse(503, 'no_backend', `no backend available for ${what}`, ctx.requestId);
  }
  ctx.backend = backend;
  ctx.upstreamPath = rewritePath(hit, ctx.path);
  return undefined;
};
