/**
 * Layer (outermost, east-west calls only): what a service's call to another did, as a metric
 * series (source_workload = the calling service) and an access log line. The gateway records its
 * requests itself (gateway/observe.ts): it knows more (the route, auth, limits) than this layer.
 * The tries' spans are the endpoint layer's.
 */
import { meshErrorOf } from '../../core/errors.ts';
import { writeAccessLog } from '../../telemetry/access-log.ts';
import { responseFlags } from '../../telemetry/flags.ts';
import type { Layer, OutboundCall } from '../call.ts';

export const observe: Layer = (next) => (call) => {
  if (call.source.kind === 'edge') return next(call);
  const obs = call.plan.observability;
  if (!obs.metrics && !obs.accessLog) return next(call);
  const started = Date.now();
  return next(call).then((response) => {
    record(call, response, started);
    return response;
  });
};

function record(call: OutboundCall, response: Response, started: number): void {
  const source = call.source as Extract<OutboundCall['source'], { kind: 'service' }>;
  const obs = call.plan.observability;
  const ms = Date.now() - started;
  const meshError = meshErrorOf(response);
  const retries = call.retries ?? 0;
  const flags = responseFlags(meshError, response.status, retries);
  const endpoint = call.endpoint;
  const recorder = call.runtime.telemetry;
  if (obs.metrics)
    recorder.metrics.request(
      {
        source: source.self,
        service: call.service,
        version: endpoint?.version ?? 'unknown',
        workload: endpoint?.key ?? 'unknown',
        route: '',
        code: response.status,
        flags,
      },
      ms,
    );
  const user = call.user && ('verified' in call.user ? call.user.verified : call.user.asserted);
  if (obs.accessLog)
    writeAccessLog(
      obs,
      {
        kind: 'mesh',
        startMs: started,
        durationMs: ms,
        requestId: call.requestId,
        traceId: call.trace.traceId,
        spanId: call.trace.spanId,
        route: undefined,
        caller: source.self,
        service: call.service,
        version: endpoint?.version,
        endpoint: endpoint?.key,
        method: (source.init.method ?? 'GET').toUpperCase(),
        url: call.pathAndQuery,
        status: response.status,
        flags,
        user: user?.sub,
        auth: undefined,
        rateLimit: undefined,
        retries,
        meshError,
      },
      call.waitUntil,
    );
}
