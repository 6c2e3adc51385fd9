/**
 * Spans as the mesh records them (one per hop a worker serves, one per try it makes) and their
 * OTLP/HTTP JSON encoding (opentelemetry-proto's ExportTraceServiceRequest, JSON mapping: ids in
 * hex, times as decimal strings of Unix nanoseconds, enums as numbers). Hand-encoded: the
 * OpenTelemetry JS SDK's exporters assume Node or a browser's long-lived process, and the shape is
 * small and fixed by the specification.
 */

export type SpanKind = 'server' | 'client';

export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: SpanKind;
  startMs: number;
  endMs: number;
  attributes: Record<string, string | number | boolean | undefined>;
  /** Status ERROR (a 5xx, or no answer); otherwise the status is left unset, as the HTTP conventions say. */
  error: boolean;
}

/** Spans kept waiting for export per isolate; beyond it the oldest are dropped (and counted). */
export const MAX_QUEUED_SPANS = 4096;

const KIND = { server: 2, client: 3 } as const;

type AnyValue = { stringValue: string } | { intValue: string } | { doubleValue: number } | { boolValue: boolean };

function anyValue(v: string | number | boolean): AnyValue {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
}

function attributes(attrs: Record<string, string | number | boolean | undefined>) {
  const out: Array<{ key: string; value: AnyValue }> = [];
  for (const [key, v] of Object.entries(attrs)) if (v !== undefined) out.push({ key, value: anyValue(v) });
  return out;
}

/** Milliseconds (possibly fractional) to Unix nanoseconds, as a decimal string (int64 in JSON). */
export function unixNanos(ms: number): string {
  // Whole microseconds, so the fraction never rounds up to a fourth digit.
  const totalMicros = Math.round(ms * 1000);
  const whole = Math.floor(totalMicros / 1000);
  const micros = totalMicros - whole * 1000;
  return `${whole}${String(micros).padStart(3, '0')}000`;
}

export interface SpanResource {
  /** service.name: "meshwork-gateway" or the service's name. */
  service: string;
  version: string | undefined;
}

/** The body of POST /v1/traces for one worker's spans. */
export function otlpTraces(resource: SpanResource, spans: readonly Span[], meshworkVersion: string) {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: attributes({ 'service.name': resource.service, 'service.version': resource.version }),
        },
        scopeSpans: [
          {
            scope: { name: 'meshwork', version: meshworkVersion },
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
              name: s.name,
              kind: KIND[s.kind],
              startTimeUnixNano: unixNanos(s.startMs),
              endTimeUnixNano: unixNanos(Math.max(s.endMs, s.startMs)),
              attributes: attributes(s.attributes),
              status: s.error ? { code: 2 } : {},
            })),
          },
        ],
      },
    ],
  };
}

/**
 * TraceIdRatioBased sampling (OpenTelemetry): decided from the trace id's low 52 bits, so every
 * worker that sees the trace id would decide the same.
 */
export function sampledByRatio(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  return parseInt(traceId.slice(-13), 16) / 2 ** 52 < ratio;
}
