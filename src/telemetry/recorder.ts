/**
 * What one isolate has recorded and not yet sent: metric counts and finished spans. Requests
 * only add to it (a few map updates, no I/O); the first request after a flush schedules the
 * next one on its own waitUntil, so the sending happens after responses, off the hot path, at
 * most once per flush interval per isolate, and stops when traffic does.
 */
import { errorText, logEvent } from '../core/log.ts';
import { MetricsBuffer, type TelemetryBatch } from './metrics.ts';
import type { ObservabilityPlan } from './plan.ts';
import { MAX_QUEUED_SPANS, otlpTraces, type Span, type SpanResource } from './spans.ts';

/**
 * The worker's env, as far as the recorder needs it (collector header secrets; the sink reads
 * its own bindings). Not Env: this module also runs in Node (tests), without the
 * Workers types.
 */
type Env = object;

function secretOf(env: Env, name: string): string | undefined {
  const v = (env as Record<string, unknown>)[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Where an isolate's metric counts go: the telemetry Durable Object, directly or through the gateway. */
export interface MetricsSink {
  /** Whether this worker can send at all (its binding is there): without it nothing is kept. */
  ready(env: Env): boolean;
  send(env: Env, batch: TelemetryBatch): Promise<void>;
}

/** Largest number of spans in one export request. */
const MAX_EXPORT = 1000;
const EXPORT_TIMEOUT_MS = 5_000;
/** A metrics send that takes longer is given up (and its counts kept for the next). */
const SEND_TIMEOUT_MS = 5_000;
/** A scheduled flush this far past its time is taken to have gone with its request. */
const STALE_MS = 15_000;

export const MESHWORK_VERSION = '0.1.0';

export class Recorder {
  readonly metrics = new MetricsBuffer();
  #spans: Span[] = [];
  /** Counts of what could not be delivered, for /_mesh/health. */
  readonly lost = { spans: 0, metricFlushes: 0 };
  #sink: MetricsSink | undefined;
  #resource: SpanResource = { service: 'meshwork-gateway', version: undefined };
  /** When the scheduled flush is due (-Infinity: none scheduled). */
  #metricsDue = Number.NEGATIVE_INFINITY;
  #spansDue = Number.NEGATIVE_INFINITY;

  /** Who this isolate is (the gateway or a service) and how its counts leave it. */
  configure(resource: SpanResource, sink: MetricsSink | undefined): void {
    this.#resource = resource;
    this.#sink = sink;
  }

  span(span: Span): void {
    if (this.#spans.length >= MAX_QUEUED_SPANS) {
      this.#spans.shift();
      this.lost.spans++;
    }
    this.#spans.push(span);
  }

  /**
   * After a request: make sure what it recorded is sent within the flush interval. "Due" is a
   * time, not a flag: a flush whose request context went away without settling (the runtime
   * ends waitUntil work some 30 s after the response) stops counting as scheduled once its time
   * is well past, and the next request schedules again.
   */
  schedule(plan: ObservabilityPlan, env: Env, waitUntil: (p: Promise<unknown>) => void): void {
    const now = Date.now();
    const metrics = plan.metrics;
    if (metrics && !this.metrics.empty && !(now < this.#metricsDue + STALE_MS)) {
      // Nowhere to send them (no binding): dropped now rather than kept and retried forever.
      if (!this.#sink?.ready(env)) this.metrics.drain();
      else {
        this.#metricsDue = now + metrics.flushMs;
        waitUntil(sleep(metrics.flushMs).then(() => this.flushMetrics(env)));
      }
    }
    const tracing = plan.tracing;
    if (tracing && this.#spans.length > 0 && !(now < this.#spansDue + STALE_MS)) {
      this.#spansDue = now + tracing.flushMs;
      waitUntil(sleep(tracing.flushMs).then(() => this.flushSpans(plan, env)));
    }
  }

  /**
   * Sends the counts now; on failure they are kept for the next flush (within the buffer's
   * bounds). What requests record while this one is on its way schedules the next.
   */
  async flushMetrics(env: Env): Promise<void> {
    this.#metricsDue = Number.NEGATIVE_INFINITY;
    if (this.metrics.empty) return;
    const batch = this.metrics.drain();
    if (!this.#sink?.ready(env)) return;
    try {
      await withDeadline(this.#sink.send(env, batch), SEND_TIMEOUT_MS);
    } catch (e) {
      this.lost.metricFlushes++;
      this.metrics.merge(batch);
      logEvent('warn', 'metrics flush failed', { service: this.#resource.service, error: errorText(e) });
    }
  }

  async flushSpans(plan: ObservabilityPlan, env: Env): Promise<void> {
    this.#spansDue = Number.NEGATIVE_INFINITY;
    const tracing = plan.tracing;
    if (!tracing) {
      this.#spans = [];
      return;
    }
    while (this.#spans.length > 0) {
      const spans = this.#spans.splice(0, MAX_EXPORT);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      for (const [name, secret] of tracing.headers) {
        const value = secretOf(env, secret);
        if (value !== undefined) headers[name] = value;
      }
      try {
        const res = await fetch(tracing.url, {
          method: 'POST',
          headers,
          body: JSON.stringify(otlpTraces(this.#resource, spans, MESHWORK_VERSION)),
          signal: AbortSignal.timeout(EXPORT_TIMEOUT_MS),
        });
        void res.body?.cancel();
        if (!res.ok) throw new Error(`collector answered HTTP ${res.status}`);
      } catch (e) {
        // Spans are not retried: a collector that is down would have them pile up in every isolate.
        this.lost.spans += spans.length;
        logEvent('warn', 'span export failed', {
          service: this.#resource.service,
          spans: spans.length,
          error: errorText(e),
        });
        return;
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => {
    if (timer !== null) clearTimeout(timer);
  });
}
