/**
 * GET /_mesh/metrics: the mesh's metrics in Prometheus's text format, for a scrape job with the
 * admin credential (bearer_token / authorization.credentials_file). The object answers with the
 * totals of every isolate; the names (meshwork_ or istio_) are the config's.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { textOf } from '../../core/bindings.ts';
import { sameSecret } from '../../core/hash.ts';
import { requestIdFrom } from '../../core/trace.ts';
import { errorResponse } from '../../core/errors.ts';
import { errorText, logEvent } from '../../core/log.ts';
import { PROMETHEUS_CONTENT_TYPE } from '../../telemetry/prometheus.ts';
import type { MeshSource } from '../../registry/source.ts';
import { adminAuth } from '../admin/auth.ts';
import type { AdminEnv } from '../admin/context.ts';
import { telemetryOf } from './object.ts';

/**
 * A scrape-only credential: the MESH_METRICS_TOKEN secret (16 characters or more) reads the
 * metrics and nothing else, so Prometheus's config need not hold one that can change the mesh.
 * Without it (or with another token), the admin credential as the admin API takes it.
 */
function scrapeToken(source: MeshSource): MiddlewareHandler<AdminEnv> {
  const admin = adminAuth(source);
  return async (c, next) => {
    const scrape = textOf(c.env, 'MESH_METRICS_TOKEN');
    const m = /^Bearer +(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
    if (scrape !== undefined && scrape.length >= 16 && m && (await sameSecret(m[1]!, scrape))) {
      c.set('requestId', requestIdFrom(c.req.raw.headers));
      return next();
    }
    return admin(c, next);
  };
}

export function metricsApp(source: MeshSource): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();
  app.use('*', scrapeToken(source));
  app.get('/', async (c) => {
    const requestId = c.get('requestId');
    const stub = telemetryOf(c.env);
    if (!stub)
      return errorResponse(503, 'no_telemetry', 'the gateway has no MESH_TELEMETRY Durable Object binding', requestId);
    const { plan } = await source.get(c.env, (p) => c.executionCtx.waitUntil(p));
    try {
      const text = await stub.prometheus(plan.observability.metrics?.names ?? 'meshwork');
      return new Response(text, { headers: { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' } });
    } catch (e) {
      logEvent('error', 'metrics read failed', { requestId, error: errorText(e) });
      return errorResponse(503, 'telemetry_unavailable', 'the metrics cannot be read right now', requestId);
    }
  });
  return app;
}
