/**
 * Layer: retries (Gateway API HTTPRouteRetry semantics, Envoy's rules). A try is retried when it
 * answered one of `codes` or the endpoint could not be reached (`onConnectFailure`), at most
 * `attempts` times, after a jittered exponential back-off, while the request timeout leaves time
 * and the service's retry budget allows. Only idempotent methods unless `unsafeMethods`; a request
 * body is read once and replayed only if its Content-Length fits `maxBodyBytes` (an unsized or
 * larger body is sent once, streamed, and not retried). A retry prefers another endpoint.
 */
import { logEvent } from '../../core/log.ts';
import { backoffMs, IDEMPOTENT } from '../../resilience/retry.ts';
import { callerOf, type Layer, type OutboundCall, type Send } from '../call.ts';
import type { CompiledRetry } from '../policy.ts';

function methodOf(call: OutboundCall): string {
  return call.source.kind === 'edge' ? call.source.request.method : (call.source.init.method ?? 'GET').toUpperCase();
}

/** Whether each try can send the same body; reads an edge body that fits, once. */
async function replayable(call: OutboundCall, retry: CompiledRetry, method: string): Promise<boolean> {
  if (method === 'GET' || method === 'HEAD') return true;
  if (call.source.kind === 'service') {
    const body = call.source.init.body;
    // Strings, buffers and forms can be sent again as they are; a stream only once.
    return body === undefined || body === null || !(body instanceof ReadableStream);
  }
  // Already read once (a mirror's copy needed it): every try sends that.
  if (call.body !== undefined) return true;
  const request = call.source.request;
  if (request.body === null) return true;
  const length = Number(request.headers.get('content-length') ?? Number.NaN);
  if (!Number.isFinite(length) || length > retry.maxBodyBytes) return false;
  call.body = await request.arrayBuffer();
  return true;
}

function shouldRetry(response: Response, call: OutboundCall, retry: CompiledRetry): boolean {
  if (call.noEndpoint || call.timedOut) return false;
  if (call.unreachable) return retry.onConnectFailure;
  return retry.codes.has(response.status);
}

export const retries: Layer = (next) => (call) => (call.policy!.retry ? withRetries(next, call) : next(call));

/** The budget counts the requests that may be retried (those with a retry policy) and their retries. */
async function withRetries(next: Send, call: OutboundCall): Promise<Response> {
  const retry = call.policy!.retry!;
  const target = call.target!;
  const { budget } = target.traffic;
  const state = call.runtime.traffic;
  state.budgetRequest(target.name, budget, Date.now());
  const method = methodOf(call);
  if ((!retry.unsafeMethods && !IDEMPOTENT.has(method)) || !(await replayable(call, retry, method))) return next(call);
  let response = await next(call);
  for (let n = 1; n <= retry.attempts && shouldRetry(response, call, retry); n++) {
    const wait = backoffMs(n, retry.backoffMs, retry.maxBackoffMs);
    if (call.deadlineAt !== undefined && Date.now() + wait >= call.deadlineAt) break;
    if (!state.budgetRetry(target.name, budget, Date.now())) {
      logEvent('warn', 'retry budget exhausted', {
        requestId: call.requestId,
        caller: callerOf(call),
        service: target.name,
      });
      break;
    }
    void response.body?.cancel().catch(() => {});
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (call.timedOut) break;
    call.unreachable = false;
    call.retries = n;
    call.runtime.telemetry.metrics.count('retries', [callerOf(call), target.name]);
    response = await next(call);
  }
  return response;
}
