/**
 * Stage: CORS (route `cors`), right after matching and before authentication: a browser's
 * preflight carries no credentials, so it is answered here (204 with what the route allows, or
 * 403 for an origin it does not). An actual cross-origin request goes on, and its answer, whatever
 * stage produces it (a 401 included, so the page can read why), gets the allow-origin fields
 * (added in app.ts after the pipeline).
 */
import { errorResponse } from '../../core/errors.ts';
import { corsAllows, corsOriginFields } from '../../plan/cors.ts';
import type { Stage } from '../context.ts';

export function isPreflight(request: Request): boolean {
  return (
    request.method === 'OPTIONS' &&
    request.headers.has('origin') &&
    request.headers.has('access-control-request-method')
  );
}

export const cors: Stage = (ctx) => {
  const plan = ctx.hit!.route.cors;
  const origin = ctx.request.headers.get('origin');
  if (!plan || origin === null) return undefined;
  const ok = corsAllows(plan, origin);
  if (!isPreflight(ctx.request)) {
    if (ok) ctx.corsHeaders = corsOriginFields(plan, origin);
    return undefined;
  }
  const method = ctx.request.headers.get('access-control-request-method')!.toUpperCase();
  const methods = plan.methods.split(', ');
  const requested = (ctx.request.headers.get('access-control-request-headers') ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const allowedHeaders = new Set(plan.headers ? plan.headers.split(', ') : []);
  const refused = !ok
    ? `origin ${origin} is not allowed`
    : !methods.includes(method)
      ? `method ${method} is not allowed`
      : requested.find((h) => !allowedHeaders.has(h))
        ? `header ${requested.find((h) => !allowedHeaders.has(h))} is not allowed`
        : undefined;
  if (refused)
    return errorResponse(403, 'cors_forbidden', `cross-origin request refused: ${refused}`, ctx.requestId, [
      ['vary', 'Origin'],
    ]);
  return new Response(null, {
    status: 204,
    headers: [
      ...corsOriginFields(plan, origin),
      ['vary', 'Origin'],
      ['access-control-allow-methods', plan.methods],
      ...(plan.headers ? ([['access-control-allow-headers', plan.headers]] as Array<[string, string]>) : []),
      ['access-control-max-age', plan.maxAge],
    ],
  });
};
