/**
 * What the gateway records of each request once its answer is ready: one meshwork_requests_total
 * series (source_workload "gateway"), auth failures, the access log line and the request's
 * server span. Everything it needs is on the context the stages filled in; nothing is sent here
 * (the recorder sends after the response, telemetry/recorder.ts).
 */
import { meshErrorOf } from '../core/errors.ts';
import { writeAccessLog } from '../telemetry/access-log.ts';
import { isAuthFailure, responseFlags } from '../telemetry/flags.ts';
import type { GatewayContext } from './context.ts';

export function observeRequest(ctx: GatewayContext, response: Response, startedAt: number): void {
  const obs = ctx.plan.observability;
  const now = Date.now();
  const ms = now - startedAt;
  const meshError = meshErrorOf(response);
  const call = ctx.call;
  const retries = call?.retries ?? 0;
  const flags = responseFlags(meshError, response.status, retries);
  const route = ctx.hit?.route;
  const service = ctx.target?.service ?? route?.service;
  const endpoint = call?.endpoint;
  const { telemetry } = ctx.runtime;
  if (obs.metrics) {
    telemetry.metrics.request(
      {
        source: 'gateway',
        service: service ?? 'unknown',
        version: endpoint?.version ?? ctx.target?.version ?? 'unknown',
        workload: endpoint?.key ?? 'unknown',
        route: route?.name ?? '',
        code: response.status,
        flags,
      },
      ms,
    );
    if (isAuthFailure(meshError)) telemetry.metrics.count('auth_failures', [route?.name ?? '', meshError!]);
  }
  const auth = !route?.auth ? 'none' : ctx.user ? 'ok' : isAuthFailure(meshError) ? meshError : 'anonymous';
  if (obs.accessLog)
    writeAccessLog(
      obs,
      {
        kind: 'gateway',
        startMs: startedAt,
        durationMs: ms,
        requestId: ctx.requestId,
        traceId: ctx.trace.traceId,
        spanId: ctx.trace.spanId,
        route: route?.name,
        caller: 'client',
        service,
        version: endpoint?.version ?? ctx.target?.version,
        endpoint: endpoint?.key,
        method: ctx.request.method,
        url: ctx.url,
        status: response.status,
        flags,
        user: ctx.user?.sub,
        auth,
        rateLimit: ctx.rateLimit,
        retries,
        meshError,
        clientIp: ctx.clientIp,
      },
      (p) => ctx.io.waitUntil(p),
    );
  if (ctx.trace.sampled && obs.tracing)
    telemetry.span({
      traceId: ctx.trace.traceId,
      spanId: ctx.trace.spanId,
      parentSpanId: ctx.trace.parentId,
      name: route ? `${ctx.request.method} ${route.name}` : ctx.request.method,
      kind: 'server',
      startMs: startedAt,
      endMs: now,
      attributes: {
        'http.request.method': ctx.request.method,
        'url.path': ctx.path,
        'http.route': route?.name,
        'http.response.status_code': response.status,
        'meshwork.service': service,
        'meshwork.response_flags': flags,
        'meshwork.retries': retries,
        'meshwork.mesh_error': meshError,
      },
      error: response.status >= 500,
    });
  telemetry.schedule(obs, ctx.env, (p) => ctx.io.waitUntil(p));
}
