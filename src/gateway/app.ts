/**
 * The edge gateway as a Hono app: meshwork's own endpoints under /_mesh/, and every other
 * request through the pipeline.
 */
import { Hono } from 'hono';
import { textOf, type MeshBindings } from '../core/bindings.ts';
import { errorResponse } from '../core/errors.ts';
import { errorText, logEvent } from '../core/log.ts';
import { withHeaders } from '../core/headers.ts';
import { requestIdFrom, traceFrom } from '../core/trace.ts';
import { adminApp } from '../control/admin/index.ts';
import { uiApp } from '../control/ui/index.ts';
import { metricsApp } from '../control/telemetry/metrics-endpoint.ts';
import { objectSink } from '../control/telemetry/object.ts';
import type { Plan } from '../plan/compile.ts';
import { HEALTH_PATH, WorkerHealth } from '../registry/health.ts';
import { MeshSource } from '../registry/source.ts';
import { runPipeline, type GatewayContext, type Stage } from './context.ts';
import { observeRequest } from './observe.ts';
import { gatewayStages } from './pipeline.ts';

/**
 * The client's address. Under `npm run dev` (MESHWORK_DEV) Miniflare passes a client's own
 * CF-Connecting-IP through, so the default source is not trusted there: every local client is
 * this machine anyway.
 */
function clientIpOf(request: Request, plan: Plan, env: MeshBindings): string | null {
  if (plan.clientIp.platformDefault && textOf(env, 'MESHWORK_DEV') === '1') return null;
  return plan.clientIp.read(request.headers);
}

export interface GatewayOptions {
  /** Live config: the bundled routes/ overlaid by the registry's snapshots from KV. */
  source?: MeshSource;
  /** A fixed compiled config instead (tests, benchmarks). */
  plan?: Plan;
  /** Replaces the standard pipeline (tests and benchmarks of single stages). */
  stages?: readonly Stage[];
}

type GatewayHono = Hono<{ Bindings: MeshBindings; Variables: { requestId: string } }>;

export function createGateway(options: GatewayOptions): GatewayHono {
  const source = options.source ?? (options.plan ? MeshSource.fixed(options.plan) : undefined);
  if (!source) throw new Error('createGateway needs a source or a plan');
  const { runtime } = source;
  runtime.telemetry.configure({ service: 'meshwork-gateway', version: undefined }, objectSink);
  const stages = options.stages ?? gatewayStages;
  const health = new WorkerHealth({ member: 'gateway', live: source.live }, runtime);
  const app: GatewayHono = new Hono();

  app.get(HEALTH_PATH, async (c) => {
    const env = c.env ?? {};
    const served = await source.get(env, (p) => c.executionCtx.waitUntil(p));
    return health.response(served, env, served.plan.identity);
  });
  app.route('/_mesh/admin', adminApp(source));
  app.route('/_mesh/ui', uiApp(source));
  app.route('/_mesh/metrics', metricsApp(source));
  app.all('/_mesh/*', (c) =>
    errorResponse(404, 'not_found', `no meshwork endpoint at ${c.req.path}`, requestIdFrom(c.req.raw.headers)),
  );

  app.all('*', async (c) => {
    const request = c.req.raw;
    const env = c.env ?? {};
    const exec = c.executionCtx;
    const waitUntil = (p: Promise<unknown>) => exec.waitUntil(p);
    const startedAt = Date.now();
    const { plan } = await source.get(env, waitUntil);
    // Once per isolate: a missing signing key (say) is logged with its fix on the first request.
    health.notice(env, plan.identity, waitUntil);
    const url = new URL(request.url);
    const ctx: GatewayContext = {
      request,
      url,
      path: url.pathname,
      host: url.hostname,
      env,
      plan,
      runtime,
      requestId: requestIdFrom(request.headers),
      trace: traceFrom(request.headers, plan.observability.sampleNew),
      clientIp: clientIpOf(request, plan, env),
      io: runtime.keyIo(env, waitUntil, plan.identity),
    };
    // Kept on the Hono context so an error answer carries the id the pipeline already used.
    c.set('requestId', ctx.requestId);
    let response: Response;
    try {
      response = await runPipeline(stages, ctx);
    } catch (err) {
      // Answered and counted here, not in onError: a request that broke is still a request.
      logEvent('error', 'gateway error', { requestId: ctx.requestId, error: errorText(err) });
      response = errorResponse(500, 'internal', 'internal gateway error', ctx.requestId);
    }
    // Vary is added to (a backend's Vary: Accept-Encoding stays); the CORS fields are the gateway's.
    if (ctx.corsHeaders)
      response = withHeaders(withHeaders(response, ctx.corsHeaders, 'set'), [['vary', 'Origin']], 'append');
    observeRequest(ctx, response, startedAt);
    return response;
  });

  app.onError((err, c) => {
    const requestId = c.get('requestId') ?? requestIdFrom(c.req.raw.headers);
    logEvent('error', 'gateway error', { requestId, error: errorText(err) });
    return errorResponse(500, 'internal', 'internal gateway error', requestId);
  });
  return app;
}
