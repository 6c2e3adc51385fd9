/**
 * withMesh: what a worker-hosted service wraps itself in.
 *
 *   const app = new Hono<{ Variables: MeshVariables }>();
 *   app.get('/hello', async (c) => c.json(await (await c.var.mesh.fetch('service-b', '/hi')).json()));
 *   export default withMesh(app, { service: 'service-a' });
 *
 * Per request it verifies who called (mesh identity), checks the caller against the service's
 * allowCallers, applies the service's rate limits, runs the service's own inbound policies,
 * then hands the request to the app with a mesh client scoped to it.
 */
import { Hono } from 'hono';
import { bundledConfig } from '../generated/bundle.ts';
import type { CompiledMesh, MeshBundle } from '../mesh/compile.ts';
import type { RegistryHeartbeat } from '../registry/heartbeat.ts';
import { REGISTRY_AUDIENCE } from '../registry/types.ts';
import { MeshSource } from '../registry/source.ts';
import { errorResponse } from '../mesh/errors.ts';
import { ROUTE_HEADER } from '../mesh/headers.ts';
import { requestIdFrom, traceFrom } from '../mesh/trace.ts';
import { logEvent, type MeshEnv } from '../mesh/upstream.ts';
import { meshFetch } from './client.ts';
import type { InboundPolicy, MeshContext } from './context.ts';
import { authorizeCaller, identify, sanitizeInbound } from './policies.ts';

export type { InboundPolicy, MeshContext, MeshFetchInit, MeshUser, MeshVariables } from './context.ts';

export interface MeshOptions<E = MeshEnv> {
  /** This service's name in routes/ (services.<name>). */
  service: string;
  /** This deployment's version label, e.g. (env) => env.VERSION; reported to the registry. */
  version?: string | ((env: E) => string | undefined);
  /**
   * A fixed mesh config. By default the service routes like the gateway: the routes/ bundled at
   * build time, overlaid by the registry's snapshots from KV (when MESH_KV is bound).
   */
  config?: MeshBundle;
  /** Inbound policies, run in order before the handler. */
  policies?: readonly InboundPolicy[];
}

export type MeshHandler<E = MeshEnv> = (
  request: Request,
  env: E,
  ctx: ExecutionContext,
  mesh: MeshContext,
) => Response | Promise<Response>;

/** Structural, so any Hono version (or copy) is accepted; method syntax keeps env types compatible. */
interface HonoLike {
  fetch(request: Request, env?: unknown, ctx?: ExecutionContext): Response | Promise<Response>;
  routes: unknown[];
  route: unknown;
  getPath?: unknown;
}

const sources = new WeakMap<MeshBundle, MeshSource>();
function sourceFor(bundle: MeshBundle): MeshSource {
  let source = sources.get(bundle);
  if (!source) sources.set(bundle, (source = new MeshSource(bundle)));
  return source;
}

/** Answered by the wrapper itself, without identity: the registry probes it. */
export const HEALTH_PATH = '/_mesh/health';

/** At most one heartbeat per this interval per isolate (and a third of the registry's TTL). */
const HEARTBEAT_EVERY_S = 30;

function isHono(h: unknown): h is HonoLike {
  return (
    typeof h === 'object' &&
    h !== null &&
    Array.isArray((h as HonoLike).routes) &&
    typeof (h as HonoLike).route === 'function'
  );
}

/**
 * Runs a Hono app with `c.var.mesh` set before any of its own middleware: a parent app whose
 * first middleware sets it, with the app's routes mounted under it. The parent is built on the
 * first request, so routes the app adds after withMesh() are included; it keeps the app's path
 * handling (strict or not, custom getPath) and its onError. Unmatched paths get the mesh's JSON
 * 404 (Hono does not expose an app's own notFound handler to reuse).
 */
function honoHandler(app: HonoLike): MeshHandler {
  const contexts = new WeakMap<Request, MeshContext>();
  let root: Hono<{ Variables: { mesh: MeshContext } }> | undefined;
  const build = () => {
    const r = new Hono<{ Variables: { mesh: MeshContext } }>(
      typeof app.getPath === 'function' ? { getPath: app.getPath as never } : {},
    );
    r.use('*', async (c, next) => {
      c.set('mesh', contexts.get(c.req.raw)!);
      await next();
    });
    r.route('/', app as unknown as Hono);
    r.notFound((c) =>
      errorResponse(
        404,
        'not_found',
        `no handler for ${c.req.method} ${c.req.path}`,
        contexts.get(c.req.raw)!.requestId,
      ),
    );
    r.onError((err, c) => {
      const mesh = contexts.get(c.req.raw)!;
      logEvent('error', 'handler error', {
        service: mesh.service,
        requestId: mesh.requestId,
        error: String(err?.message ?? err),
      });
      return errorResponse(500, 'internal', `${mesh.service} failed to handle the request`, mesh.requestId);
    });
    return r;
  };
  return (request, env, ctx, mesh) => {
    contexts.set(request, mesh);
    root ??= build();
    return root.fetch(request, env, ctx);
  };
}

/** The worker withMesh returns: export it as the module's default. */
export interface MeshWorker<E> {
  fetch(request: Request, env: E, ctx: ExecutionContext): Promise<Response>;
  /** Cron trigger: heartbeats to the registry, so an idle service stays registered. */
  scheduled(controller: ScheduledController, env: E, ctx: ExecutionContext): Promise<void>;
}

export function withMesh<E extends object = MeshEnv>(
  app: HonoLike | MeshHandler<E>,
  options: MeshOptions<E>,
): MeshWorker<E> {
  const self = options.service;
  // A fixed config is compiled once; the default one follows the registry like the gateway.
  const fixed = options.config ? new MeshSource(options.config) : undefined;
  const source = fixed ?? sourceFor(bundledConfig);
  const declared = source.served.mesh.services.get(self);
  if (!declared) {
    throw new Error(`withMesh: service "${self}" is not defined in the mesh config (services.${self} in routes/)`);
  }
  const policies = options.policies ?? [];
  const handler = (isHono(app) ? honoHandler(app) : app) as MeshHandler<E>;
  const versionOf = (env: E) => (typeof options.version === 'function' ? options.version(env) : options.version);
  let lastBeat = 0;

  const heartbeat = (env: E, ctx: ExecutionContext, mesh: CompiledMesh, force: boolean) => {
    const registry = (env as MeshEnv).MESH_REGISTRY as Service<RegistryHeartbeat> | undefined;
    if (!registry || typeof (registry as { heartbeat?: unknown }).heartbeat !== 'function') return;
    const every = Math.min(HEARTBEAT_EVERY_S, (mesh.registry.heartbeatTtl ?? 90) / 3) * 1000;
    const now = Date.now();
    if (!force && now - lastBeat < every) return;
    lastBeat = now;
    const version = versionOf(env);
    const beat = (async () => {
      // The registry believes only a service's own signed identity.
      const token = await mesh.identity.minter.identityFor(REGISTRY_AUDIENCE, env as MeshEnv);
      const answer = await registry.heartbeat(token, {
        service: self,
        ...(version ? { version } : {}),
        healthPath: HEALTH_PATH,
      });
      if (!answer.ok) throw new Error(answer.error);
    })().catch((e: unknown) =>
      logEvent('warn', 'registry heartbeat failed', { service: self, error: String((e as Error)?.message ?? e) }),
    );
    ctx.waitUntil(beat);
  };

  return {
    async fetch(request: Request, env: E, ctx: ExecutionContext) {
      const requestId = requestIdFrom(request.headers);
      const trace = traceFrom(request.headers);
      const meshEnv = env as MeshEnv;
      try {
        const { mesh } = fixed ? fixed.served : await source.get(meshEnv, (p) => ctx.waitUntil(p));
        if (!fixed) heartbeat(env, ctx, mesh, false);
        // Liveness for the registry's probes: no identity needed, nothing about callers revealed.
        if (request.method === 'GET' && new URL(request.url).pathname === HEALTH_PATH) {
          const version = versionOf(env);
          return Response.json(
            { status: 'ok', service: self, ...(version ? { version } : {}) },
            { headers: { 'cache-control': 'no-store' } },
          );
        }
        // The service as the config in force defines it (policies may change with an apply).
        const service = mesh.services.get(self) ?? declared;
        const facts = await identify(
          request,
          mesh,
          service,
          { env: meshEnv, waitUntil: (p) => ctx.waitUntil(p) },
          requestId,
        );
        if (facts instanceof Response) return facts;
        const denied = authorizeCaller(service, facts.caller, requestId);
        if (denied) return denied;
        const route = facts.caller === 'gateway' ? (request.headers.get(ROUTE_HEADER) ?? undefined) : undefined;
        let limitHeaders: Array<[string, string]> | undefined;
        if (service.policy.rateLimits.length > 0) {
          const limitFacts = {
            clientIp: request.headers.get('cf-connecting-ip'),
            route,
            caller: facts.caller,
            claims: facts.user?.claims,
            issuer: facts.user?.issuer,
            headers: request.headers,
          };
          const outcome = await mesh.limiter.check(service.policy.rateLimits, limitFacts, meshEnv, requestId);
          if (outcome.reject) return outcome.reject;
          limitHeaders = outcome.headers;
        }
        const scope = {
          mesh,
          env: meshEnv,
          self,
          requestId,
          trace,
          user: facts.user,
          userAssertion: facts.userAssertion,
        };
        const meshCtx: MeshContext = {
          service: self,
          caller: facts.caller,
          user: facts.user,
          // The route name is informational: set by the gateway, meaningful only when it called.
          route,
          requestId,
          trace,
          fetch: (target, path, init) => meshFetch(scope, target, path, init),
        };
        const inbound = sanitizeInbound(request, mesh, facts);
        for (const policy of policies) {
          const answer = await policy(inbound, meshCtx, meshEnv);
          if (answer) return answer;
        }
        const response = await handler(inbound, env, ctx, meshCtx);
        if (!limitHeaders || response.status === 101) return response;
        const withHeaders = new Response(response.body, response);
        for (const [name, value] of limitHeaders) withHeaders.headers.set(name, value);
        return withHeaders;
      } catch (e) {
        logEvent('error', 'handler error', { service: self, requestId, error: String((e as Error)?.message ?? e) });
        return errorResponse(500, 'internal', `${self} failed to handle the request`, requestId);
      }
    },

    async scheduled(_controller: ScheduledController, env: E, ctx: ExecutionContext) {
      const { mesh } = await source.get(env as MeshEnv, (p) => ctx.waitUntil(p));
      heartbeat(env, ctx, mesh, true);
    },
  };
}
