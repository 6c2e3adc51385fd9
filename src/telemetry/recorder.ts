/**
 * What one isolate has recorded and not yet sent: metric counts and finished spans. Requests
 * only add to it (a few map updates, no I/O); the first request after a flush schedules the
 * next one on its own waitUntil, so the sending happens after responses, off the hot path, at
 * most once per flush interval per isolate, and stops when traffic does.
 */
import { textOf, type MeshBindings } from '../core/bindings.ts';
import { errorText, logEvent } from '../core/log.ts';
import { MetricsBuffer, type TelemetryBatch } from './metrics.ts';
import type { ObservabilityPlan } from './plan.ts';
import { MAX_QUEUED_SPANS, otlpTraces, type Span, type SpanResource } from './spans.ts';

/** Where an isolate's metric counts go: the telemetry Durable Object, directly or through the gateway. */
export interface MetricsSink {
  /** Whether this worker can send at all (its binding is there): without it nothing is kept. */
  ready(env: MeshBindings): boolean;
  send(env: MeshBindings, batch: TelemetryBatch): Promise<void>;
}

/** Largest number of spans in one export request. */
const MAX_EXPORT = 1000;
const EXPORT_TIMEOUT_MS = 10_000;

export const MESHWORK_VERSION = '0.1.0';

export class Recorder {
  readonly metrics = new MetricsBuffer();
  #spans: Span[] = [];
  /** Counts of what could not be delivered, for /_mesh/health. */
  readonly lost = { spans: 0, metricFlushes: 0 };
  #sink: MetricsSink | undefined;
  #resource: SpanResource = { service: 'meshwork-gateway', version: undefined };
  #metricsDue = false;
  #spansDue = false;

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

  /** After a request: make sure what it recorded is sent within the flush interval. */
  schedule(plan: ObservabilityPlan, env: MeshBindings, waitUntil: (p: Promise<unknown>) => void): void {
    const metrics = plan.metrics;
    if (metrics && !this.#metricsDue && !this.metrics.empty) {
      // Nowhere to send them (no binding): dropped now rather than kept and retried forever.
      if (!this.#sink?.ready(env)) this.metrics.drain();
      else {
        this.#metricsDue = true;
        waitUntil(
          sleep(metrics.flushMs)
            .then(() => this.flushMetrics(env))
            .finally(() => (this.#metricsDue = false)),
        );
      }
    }
    const tracing = plan.tracing;
    if (tracing && !this.#spansDue && this.#spans.length > 0) {
      this.#spansDue = true;
      waitUntil(
        sleep(tracing.flushMs)
          .then(() => this.flushSpans(plan, env))
          .finally(() => (this.#spansDue = false)),
      );
    }
  }

  /** Sends the counts now; on failure they are kept for the next flush (within the buffer's bounds). */
  async flushMetrics(env: MeshBindings): Promise<void> {
    if (this.metrics.empty) return;
    const batch = this.metrics.drain();
    if (!this.#sink?.ready(env)) return;
    try {
      await this.#sink.send(env, batch);
    } catch (e) {
      this.lost.metricFlushes++;
      this.metrics.merge(batch);
      logEvent('warn', 'metrics flush failed', { service: this.#resource.service, error: errorText(e) });
    }
  }

  async flushSpans(plan: ObservabilityPlan, env: MeshBindings): Promise<void> {
    const tracing = plan.tracing;
    if (!tracing) {
      this.#spans = [];
      return;
    }
    while (this.#spans.length > 0) {
      const spans = this.#spans.splice(0, MAX_EXPORT);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      for (const [name, secret] of tracing.headers) {
        const value = textOf(env, secret);
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
