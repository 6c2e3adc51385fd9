/**
 * The edge gateway as a Hono app: meshwork's own endpoints under /_mesh/, and every other
 * request through the pipeline.
 */
import { Hono } from 'hono';
import type { CompiledMesh } from '../mesh/compile.ts';
import { errorResponse } from '../mesh/errors.ts';
import { storeFailures } from '../ratelimit/limiter.ts';
import { requestIdFrom, traceFrom } from '../mesh/trace.ts';
import { logEvent, type MeshEnv } from '../mesh/upstream.ts';
import { runPipeline, type GatewayContext, type Stage } from './context.ts';
import { gatewayStages } from './pipeline.ts';
import { adminApp } from './admin.ts';
import { normalizePath } from '../router/path.ts';
import type { MeshSource, ServedMesh } from '../registry/source.ts';

export interface GatewayOptions {
  /** Live config: the bundled routes/ overlaid by the registry's snapshots from KV. */
  source?: MeshSource;
  /** A fixed compiled config instead (tests, benchmarks). */
  mesh?: CompiledMesh;
  /** Replaces the standard pipeline (tests and benchmarks of single stages). */
  stages?: readonly Stage[];
}

type GatewayHono = Hono<{ Bindings: MeshEnv; Variables: { requestId: string } }>;

export function createGateway(options: GatewayOptions): GatewayHono {
  const { source } = options;
  const fixed: ServedMesh | undefined = options.mesh
    ? { mesh: options.mesh, revision: -1, configRevision: 0 }
    : undefined;
  if (!source && !fixed) throw new Error('createGateway needs a source or a mesh');
  const serve = (env: MeshEnv, exec: ExecutionContext): Promise<ServedMesh> | ServedMesh =>
    fixed ?? source!.get(env, (p) => exec.waitUntil(p));
  const stages = options.stages ?? gatewayStages;
  const app: GatewayHono = new Hono();

  app.get('/_mesh/health', async (c) => {
    const { mesh, revision, configRevision } = await serve(c.env ?? {}, c.executionCtx);
    return c.json(
      {
        status: 'ok',
        config: {
          version: mesh.version,
          routes: mesh.router.size,
          services: mesh.services.size,
          revision: configRevision,
          snapshot: revision,
        },
        // Counted per isolate since it started.
        rateLimitStoreFailures: { ...storeFailures },
      },
      200,
      { 'cache-control': 'no-store' },
    );
  });
  app.route('/_mesh/admin', adminApp(source));
  app.all('/_mesh/*', (c) =>
    errorResponse(404, 'not_found', `no meshwork endpoint at ${c.req.path}`, requestIdFrom(c.req.raw.headers)),
  );

  app.all('*', async (c) => {
    const request = c.req.raw;
    const env = c.env ?? {};
    const exec = c.executionCtx;
    const { mesh } = await serve(env, exec);
    const url = new URL(request.url);
    const ctx: GatewayContext = {
      request,
      url,
      path: normalizePath(url.pathname),
      env,
      mesh,
      requestId: requestIdFrom(request.headers),
      trace: traceFrom(request.headers),
      clientIp: request.headers.get('cf-connecting-ip'),
      io: { env, kv: env.MESH_KV as KVNamespace | undefined, waitUntil: (p) => exec.waitUntil(p) },
    };
    // Kept on the Hono context so an error answer carries the id the pipeline already used.
    c.set('requestId', ctx.requestId);
    return runPipeline(stages, ctx);
  });

  app.onError((err, c) => {
    const requestId = c.get('requestId') ?? requestIdFrom(c.req.raw.headers);
    logEvent('error', 'gateway error', { requestId, error: String(err?.message ?? err) });
    return errorResponse(500, 'internal', 'internal gateway error', requestId);
  });
  return app;
}
