/**
 * GET /_mesh/health, as the gateway and every wrapped service answer it (the registry's probes
 * call it): what config this isolate serves, and its counters. No identity needed, and nothing
 * about callers revealed.
 */
import type { MeshRuntime } from '../runtime/runtime.ts';
import type { Served } from './source.ts';

export const HEALTH_PATH = '/_mesh/health';

export function healthResponse(served: Served, runtime: MeshRuntime, extra: Record<string, unknown> = {}): Response {
  const { plan, revision, configRevision } = served;
  return Response.json(
    {
      status: 'ok',
      ...extra,
      config: {
        version: plan.version,
        routes: plan.router.size,
        services: plan.services.size,
        revision: configRevision,
        snapshot: revision,
      },
      // Counted per isolate since it started.
      rateLimitStoreFailures: { ...runtime.limiter.storeFailures },
      rejected: { ...runtime.counters },
      // Spans dropped (collector down or queue full) and metric flushes that failed (kept for the next).
      telemetryLost: { ...runtime.telemetry.lost },
    },
    { headers: { 'cache-control': 'no-store' } },
  );
}
