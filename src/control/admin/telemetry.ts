/** GET telemetry: the last minute of the mesh's traffic per edge, and rate-limit hot keys (TelemetryOverview). */
import type { Hono } from 'hono';
import { errorResponse } from '../../core/errors.ts';
import { errorText, logEvent } from '../../core/log.ts';
import { telemetryOf } from '../telemetry/object.ts';
import { rid, type AdminEnv } from './context.ts';

export function telemetryRoutes(app: Hono<AdminEnv>): void {
  app.get('/telemetry', async (c) => {
    const stub = telemetryOf(c.env);
    if (!stub)
      return errorResponse(503, 'no_telemetry', 'the gateway has no MESH_TELEMETRY Durable Object binding', rid(c));
    try {
      return c.json(await stub.overview(), 200, { 'cache-control': 'no-store' });
    } catch (e) {
      logEvent('error', 'telemetry read failed', { requestId: rid(c), error: errorText(e) });
      return errorResponse(503, 'telemetry_unavailable', 'the telemetry cannot be read right now', rid(c));
    }
  });
}
