/** Stage 1: find the route for this request, or 404. */
import { errorResponse } from '../../core/errors.ts';
import type { Stage } from '../context.ts';
import { isPreflight } from './cors.ts';

export const matchRoute: Stage = (ctx) => {
  const { url, request } = ctx;
  const hit = ctx.plan.router.find({
    host: ctx.host,
    path: ctx.path,
    // A CORS preflight is about the method it announces: it matches the route that request would.
    method: isPreflight(request) ? request.headers.get('access-control-request-method')!.toUpperCase() : request.method,
    headers: request.headers,
    url,
  });
  if (!hit) {
    return errorResponse(
      404,
      'route_not_found',
      `no route matches ${request.method} ${truncate(url.pathname)}`,
      ctx.requestId,
    );
  }
  ctx.hit = hit;
  return undefined;
};

function truncate(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}
