/**
 * withMesh: what a worker-hosted service wraps itself in.
 *
 *   const app = new Hono<{ Variables: MeshVariables }>();
 *   app.get('/hello', async (c) => c.json(await (await c.var.mesh.fetch('service-b', '/hi')).json()));
 *   export default withMesh(app, { service: 'service-a' });
 *
 * Per request, in order: health (answered without identity, for the registry's probes); who is
 * calling (mesh identity); may they (allowCallers); within the service's rate limits; the
 * service's own inbound policies; then the app, with a mesh client scoped to the request.
 */
import { entrypointOf, type MeshBindings } from '../core/bindings.ts';
import { errorResponse, meshErrorOf } from '../core/errors.ts';
import { CLIENT_ADDRESS_HEADER, ROUTE_HEADER, withHeaders } from '../core/headers.ts';
import { errorText, logEvent } from '../core/log.ts';
import { requestIdFrom, traceFrom, type TraceContext } from '../core/trace.ts';
import type { MeshBundle } from '../config/schema.ts';
import { bundledConfig } from '../generated/bundle.ts';
import type { Plan } from '../plan/compile.ts';
import { splitBatch, TELEMETRY_AUDIENCE, type TelemetryBatch } from '../telemetry/metrics.ts';
import type { MetricsSink } from '../telemetry/recorder.ts';
import { HEALTH_PATH, WorkerHealth } from '../registry/health.ts';
import { LIMITER_AUDIENCE } from '../ratelimit/limiter.ts';
import { MeshSource } from '../registry/source.ts';
import { meshFetch } from './client.ts';
import type { InboundPolicy, MeshContext } from './context.ts';
import { Heartbeat } from './heartbeat.ts';
import { honoHandler, isHono, type HonoLike, type MeshHandler } from './hono.ts';
import { authorizeCaller, identify, sanitizeInbound } from './policies.ts';

export type { InboundPolicy, MeshContext, MeshFetchInit, MeshUser, MeshVariables } from './context.ts';
export type { MeshHandler } from './hono.ts';

const TELEMETRY_BINDING = 'MESH_TELEMETRY';

interface TelemetryGate {
  report(identityToken: string, batch: TelemetryBatch): Promise<{ ok: true } | { ok: false; error: string }>;
}
export { HEALTH_PATH } from '../registry/health.ts';

export interface MeshOptions<E = MeshBindings> {
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

/** The worker withMesh returns: export it as the module's default. */
export interface MeshWorker<E> {
  fetch(request: Request, env: E, ctx: ExecutionContext): Promise<Response>;
  /** Cron trigger: heartbeats to the registry, so an idle service stays registered. */
  scheduled(controller: ScheduledController, env: E, ctx: ExecutionContext): Promise<void>;
}

/** One live source per bundle per isolate: every wrapped app in a worker shares it. */
const sources = new WeakMap<MeshBundle, MeshSource>();
function sourceFor(bundle: MeshBundle): MeshSource {
  let source = sources.get(bundle);
  if (!source) sources.set(bundle, (source = new MeshSource(bundle)));
  return source;
}

export function withMesh<E extends object = MeshBindings>(
  app: HonoLike | MeshHandler<E>,
  options: MeshOptions<E>,
): MeshWorker<E> {
  const self = options.service;
  // A fixed config never reads KV; the default one follows the registry like the gateway.
  const source = options.config ? new MeshSource(options.config, { live: false }) : sourceFor(bundledConfig);
  const { runtime } = source;
  const declared = source.served.plan.services.get(self);
  if (!declared) {
    throw new Error(`withMesh: service "${self}" is not defined in the mesh config (services.${self} in routes/)`);
  }
  const policies = options.policies ?? [];
  const handler = isHono(app) ? honoHandler<E>(app) : app;
  const versionOf = (env: E) => (typeof options.version === 'function' ? options.version(env) : options.version);
  const heartbeat = new Heartbeat(self, runtime);
  const live = !options.config;
  const health = new WorkerHealth({ member: self, live }, runtime);
  let configured = false;
  // Through the gateway's Telemetry entrypoint, as this service (its identity token says who).
  const gateOf = (env: object) =>
    entrypointOf(env as MeshBindings, TELEMETRY_BINDING, 'report') as unknown as TelemetryGate | undefined;
  const metricsSink: MetricsSink = {
    ready: (env) => gateOf(env) !== undefined,
    send: async (env, batch) => {
      const minter = runtime.identity(source.served.plan.identity).minter;
      const token = await minter.identityFor(TELEMETRY_AUDIENCE, env as MeshBindings);
      // One report at a time, each within the entrypoint's size (a batch kept from failed sends can be larger).
      for (const report of splitBatch(batch)) {
        const answer = await gateOf(env)!.report(token, report);
        // A refusal is not retried: sent again, the same report would be refused again.
        if (!answer.ok) return logEvent('warn', 'metrics report refused', { service: self, error: answer.error });
      }
    },
  };
  /** The hop's server span (the parent of the calls it made), and the flush after it. */
  const afterRequest = (
    plan: Plan,
    trace: TraceContext,
    request: Request,
    response: Response | undefined,
    startedAt: number,
    waitUntil: (p: Promise<unknown>) => void,
    env: MeshBindings,
  ) => {
    const obs = plan.observability;
    if (trace.sampled && obs.tracing && new URL(request.url).pathname !== HEALTH_PATH) {
      const status = response?.status ?? 500;
      runtime.telemetry.span({
        traceId: trace.traceId,
        spanId: trace.spanId,
        parentSpanId: trace.parentId,
        name: `${request.method} ${self}`,
        kind: 'server',
        startMs: startedAt,
        endMs: Date.now(),
        attributes: {
          'http.request.method': request.method,
          'url.path': new URL(request.url).pathname,
          'http.response.status_code': status,
          'meshwork.service': self,
          'meshwork.mesh_error': response ? meshErrorOf(response) : undefined,
        },
        error: status >= 500,
      });
    }
    runtime.telemetry.schedule(obs, env, waitUntil);
  };

  return {
    async fetch(request: Request, env: E, ctx: ExecutionContext) {
      const startedAt = Date.now();
      const requestId = requestIdFrom(request.headers);
      const bindings = env as MeshBindings;
      const waitUntil = (p: Promise<unknown>) => ctx.waitUntil(p);
      let plan: Plan | undefined;
      let trace: TraceContext | undefined;
      let response: Response | undefined;
      try {
        const served = await source.get(bindings, waitUntil);
        const current = (plan = served.plan);
        trace = traceFrom(request.headers, plan.observability.sampleNew);
        if (!configured) {
          configured = true;
          runtime.telemetry.configure({ service: self, version: versionOf(env) }, metricsSink);
        }
        if (live) heartbeat.beat(bindings, ctx, plan, versionOf(env), false);
        if (request.method === 'GET' && new URL(request.url).pathname === HEALTH_PATH) {
          const version = versionOf(env);
          const extra = { service: self, ...(version ? { version } : {}) };
          return (response = await health.response(served, bindings, plan.identity, extra));
        }
        // Once per isolate: a missing signing key (say) is logged with its fix on the first request.
        health.notice(bindings, plan.identity, waitUntil);
        // The service as the config in force defines it (policies may change with an apply).
        const service = plan.services.get(self) ?? declared;
        const io = runtime.keyIo(bindings, waitUntil);
        const facts = await identify(request, plan, runtime, service, io, requestId);
        if (facts instanceof Response) return (response = facts);
        const denied = authorizeCaller(service, facts.caller, requestId);
        if (denied) return (response = denied);
        // The route name is informational: set by the gateway, meaningful only when it called.
        const route = facts.caller === 'gateway' ? (request.headers.get(ROUTE_HEADER) ?? undefined) : undefined;
        let limitHeaders: Array<[string, string]> = [];
        if (service.policy.rateLimits.length > 0) {
          const outcome = await runtime.limiter.check(
            service.policy.rateLimits,
            {
              // The client's address as the gateway vouches for it; nothing from another caller.
              clientIp: facts.caller === 'gateway' ? request.headers.get(CLIENT_ADDRESS_HEADER) : null,
              route,
              caller: facts.caller,
              claims: facts.user?.claims,
              issuer: facts.user?.issuer,
              headers: request.headers,
            },
            bindings,
            requestId,
            // Through the gateway's RateLimits entrypoint, as this service.
            {
              member: self,
              identity: () => runtime.identity(current.identity).minter.identityFor(LIMITER_AUDIENCE, bindings),
            },
            waitUntil,
          );
          if (current.observability.metrics)
            for (const d of outcome.decisions) {
              runtime.telemetry.metrics.count('ratelimit_decisions', [d.policy, self, d.decision]);
              if (d.decision !== 'store_error')
                runtime.telemetry.metrics.hotKey(d.policy, d.key, d.decision === 'limited');
            }
          if (outcome.reject) return (response = outcome.reject);
          limitHeaders = outcome.headers;
        }
        const scope = {
          plan,
          runtime,
          env: bindings,
          self,
          requestId,
          trace,
          user: facts.user,
          userAssertion: facts.userAssertion,
          waitUntil,
        };
        const mesh: MeshContext = {
          service: self,
          caller: facts.caller,
          user: facts.user,
          route,
          requestId,
          trace,
          fetch: (target, path, init) => meshFetch(scope, target, path, init),
        };
        const inbound = sanitizeInbound(request, plan, facts);
        for (const policy of policies) {
          const answer = await policy(inbound, mesh, bindings);
          if (answer) return (response = answer);
        }
        // set: the service's own limits are the ones it reports.
        return (response = withHeaders(await handler(inbound, env, ctx, mesh), limitHeaders, 'set'));
      } catch (e) {
        logEvent('error', 'handler error', { service: self, requestId, error: errorText(e) });
        return (response = errorResponse(500, 'internal', `${self} failed to handle the request`, requestId));
      } finally {
        if (plan && trace) afterRequest(plan, trace, request, response, startedAt, waitUntil, bindings);
      }
    },

    async scheduled(_controller: ScheduledController, env: E, ctx: ExecutionContext) {
      const { plan } = await source.get(env as MeshBindings, (p) => ctx.waitUntil(p));
      if (live) heartbeat.beat(env as MeshBindings, ctx, plan, versionOf(env), true);
    },
  };
}
