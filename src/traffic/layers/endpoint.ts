/**
 * Layer: choose the endpoint and make the try. The version comes from the call (pinned) or the
 * service's weights (the canary split); within it the service's balancer picks among endpoints
 * that are in rotation: not ejected by outlier detection, under the per-endpoint request cap, and
 * on a retry not one already tried if another is left. Nothing left: 503 at once, nothing built
 * or signed. The try is bounded by `timeouts.backendRequest` (504, the try cancelled), its
 * requests in flight counted for LeastRequest and the cap, and its outcome recorded for outlier
 * detection.
 */
import { versionKey } from '../../core/endpoint.ts';
import { errorResponse } from '../../core/errors.ts';
import { logEvent } from '../../core/log.ts';
import { randomHex } from '../../core/trace.ts';
import { p2cPick } from '../../resilience/balance/p2c.ts';
import { ringPick } from '../../resilience/balance/ring.ts';
import { smoothPick } from '../../resilience/balance/smooth-wrr.ts';
import type { TrafficState } from '../../resilience/state.ts';
import { callerOf, type Layer, type OutboundCall } from '../call.ts';
import { groupFor, type Endpoint, type EndpointGroup } from '../endpoints.ts';
import { requestValue, type ServiceTraffic } from '../policy.ts';
import { withTimeout } from '../timeout.ts';
import { upstreamFor } from '../upstream.ts';

/** The value ConsistentHash hashes, or undefined (the request goes by round robin). */
function hashValue(call: OutboundCall, traffic: ServiceTraffic): string | undefined {
  const user = call.user;
  const claims = user ? ('verified' in user ? user.verified.claims : user.asserted.claims) : undefined;
  const headers = call.source.kind === 'edge' ? call.source.request.headers : new Headers(call.source.init.headers);
  return requestValue(traffic.hashOn!, headers, claims);
}

function pick(call: OutboundCall, group: EndpointGroup, traffic: ServiceTraffic, state: TrafficState, now: number) {
  const { endpoints, keys, weights } = group;
  const cap = traffic.maxPerEndpoint;
  const usable = (i: number) =>
    weights[i]! > 0 &&
    !(traffic.outlier && state.ejected(keys[i]!, now)) &&
    !(cap !== undefined && state.inFlight(keys[i]!) >= cap);
  let allowed = usable;
  const tried = call.tried;
  if (tried?.length) {
    const fresh = (i: number) => usable(i) && !tried.includes(keys[i]!);
    if (endpoints.some((_, i) => fresh(i))) allowed = fresh;
  }
  const candidates = () => {
    const out: number[] = [];
    for (let i = 0; i < endpoints.length; i++) if (allowed(i)) out.push(i);
    return out;
  };
  const roundRobin = () => smoothPick(state.smooth(group, weights), allowed);
  switch (traffic.balancer) {
    case 'RoundRobin':
      return roundRobin();
    case 'LeastRequest':
      return p2cPick(endpoints.map((_, i) => i).filter(allowed), (i) => state.inFlight(endpoints[i]!.key));
    case 'Random': {
      const list = candidates();
      const total = list.reduce((n, i) => n + weights[i]!, 0);
      let x = Math.random() * total;
      for (const i of list) if ((x -= weights[i]!) < 0) return i;
      return list.at(-1) ?? -1;
    }
    case 'ConsistentHash': {
      const key = hashValue(call, traffic);
      if (key === undefined) return roundRobin();
      const ring = state.ring(group, keys, weights);
      return ringPick(ring, key, allowed);
    }
  }
}

export const chooseEndpoint: Layer = (next) => async (call) => {
  // The request timeout has answered already (e.g. while a slow body was read): send nothing.
  if (call.timedOut) return errorResponse(504, 'gateway_timeout', `${call.service} timed out`, call.requestId);
  const target = call.target!;
  const { traffic } = target;
  const state = call.runtime.traffic;
  const what = versionKey(call.service, call.version);
  // A sticky route's key decides the version too, so one user stays on one version.
  const unit = call.stickyUnit;
  const group = groupFor(target.endpoints, call.version, unit === undefined ? undefined : () => unit);
  if (!group) {
    call.noEndpoint = true;
    call.noAnswer = true;
    return errorResponse(503, 'no_backend', `no backend available for ${what}`, call.requestId);
  }
  const i = pick(call, group, traffic, state, Date.now());
  if (i < 0) {
    call.noEndpoint = true;
    call.noAnswer = true;
    return errorResponse(
      503,
      'no_healthy_backend',
      `every endpoint of ${what} is ejected or at its request cap`,
      call.requestId,
    );
  }
  const endpoint = group.endpoints[i]!;
  const upstream = upstreamFor(call.env, endpoint);
  if (!upstream) {
    const caller = callerOf(call);
    logEvent('error', 'binding missing', { requestId: call.requestId, caller, endpoint: endpoint.key });
    const where = caller === 'gateway' ? 'the gateway' : caller;
    call.noEndpoint = true;
    call.noAnswer = true;
    return errorResponse(503, 'no_backend', `backend ${endpoint.key} is not bound in ${where}`, call.requestId);
  }
  call.endpoint = endpoint;
  call.upstream = upstream;
  call.noAnswer = false;
  (call.tried ??= []).push(endpoint.key);
  call.trySpanId = randomHex(8);
  const startedAt = Date.now();
  const tryMs = call.policy!.backendMs;
  const timed = tryMs > 0 || call.deadlineAt !== undefined;
  if (timed) call.abort = new AbortController();
  let tryTimedOut = false;
  const done = state.start(endpoint.key);
  let response: Response;
  try {
    response =
      tryMs > 0
        ? await withTimeout(next(call), tryMs, () => {
            tryTimedOut = true;
            call.noAnswer = true;
            call.abort?.abort();
            return errorResponse(
              504,
              'upstream_timeout',
              `backend ${endpoint.key} did not answer within ${tryMs} ms (timeouts.backendRequest)`,
              call.requestId,
            );
          })
        : await next(call);
  } finally {
    done();
  }
  if (call.unreachable || tryTimedOut)
    call.runtime.telemetry.metrics.count('upstream_errors', [
      callerOf(call),
      target.name,
      endpoint.key,
      call.unreachable ? 'unreachable' : 'timeout',
    ]);
  if (traffic.outlier) {
    const failed = response.status >= 500 || call.unreachable === true;
    if (state.recordOutcome(endpoint.key, traffic.outlier, failed, Date.now(), group.keys)) {
      call.runtime.telemetry.metrics.count('ejections', [target.name, endpoint.key]);
      logEvent('warn', 'endpoint ejected', {
        requestId: call.requestId,
        caller: callerOf(call),
        endpoint: endpoint.key,
      });
    }
  }
  if (call.trace.sampled && call.plan.observability.tracing) trySpan(call, endpoint, response, startedAt);
  return response;
};

/** The try's client span: a child of the hop's span, the parent of the span the endpoint records. */
function trySpan(call: OutboundCall, endpoint: Endpoint, response: Response, startedAt: number): void {
  const method = call.source.kind === 'edge' ? call.source.request.method : (call.source.init.method ?? 'GET');
  call.runtime.telemetry.span({
    traceId: call.trace.traceId,
    spanId: call.trySpanId!,
    parentSpanId: call.trace.spanId,
    name: `${method.toUpperCase()} ${call.service}`,
    kind: 'client',
    startMs: startedAt,
    endMs: Date.now(),
    attributes: {
      'http.request.method': method.toUpperCase(),
      'http.response.status_code': response.status,
      'url.path': call.pathAndQuery.split('?')[0],
      'meshwork.caller': callerOf(call),
      'meshwork.service': call.service,
      'meshwork.version': endpoint.version,
      'meshwork.endpoint': endpoint.key,
      'meshwork.retry': call.retries ?? 0,
      ...(call.unreachable ? { 'error.type': 'unreachable' } : {}),
    },
    error: response.status >= 500 || call.unreachable === true,
  });
}
