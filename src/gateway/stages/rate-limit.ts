/**
 * Stage: the route's rate limits, after authentication (so claim keys are verified values)
 * and before anything reaches the backend. Routes without limits cost nothing here.
 */
import type { Stage } from '../context.ts';

export const rateLimit: Stage = async (ctx) => {
  const limits = ctx.hit!.route.rateLimits;
  if (limits.length === 0) return undefined;
  const outcome = await ctx.runtime.limiter.check(
    limits,
    {
      clientIp: ctx.clientIp,
      route: ctx.hit!.route.name,
      caller: undefined,
      claims: ctx.user?.claims,
      issuer: ctx.user?.issuer,
      headers: ctx.request.headers,
    },
    ctx.env,
    ctx.requestId,
    undefined,
    (p) => ctx.io.waitUntil(p),
  );
  const metrics = ctx.plan.observability.metrics ? ctx.runtime.telemetry.metrics : undefined;
  let worst: 'allowed' | 'limited' | 'store_error' = 'allowed';
  for (const d of outcome.decisions) {
    if (d.decision === 'limited' || (d.decision === 'store_error' && worst === 'allowed')) worst = d.decision;
    if (metrics) {
      metrics.count('ratelimit_decisions', [d.policy, 'gateway', d.decision]);
      if (d.decision !== 'store_error') metrics.hotKey(d.policy, d.key, d.decision === 'limited');
    }
  }
  ctx.rateLimit = worst;
  if (outcome.reject) return outcome.reject;
  (ctx.responseHeaders ??= []).push(...outcome.headers);
  return undefined;
};
