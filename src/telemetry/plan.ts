/** The observability config, compiled once per config version (nothing here is decided per request). */
import type { ObservabilitySpec } from '../config/schema.ts';
import type { MetricNames } from './prometheus.ts';
import { sampledByRatio } from './spans.ts';

export interface ObservabilityPlan {
  /** Undefined when access logs are off. */
  readonly accessLog:
    | { readonly user: 'sub' | 'hashed' | 'omit'; readonly clientIp: boolean; readonly successSampling: number }
    | undefined;
  /** Undefined when metrics are off. */
  readonly metrics: { readonly names: MetricNames; readonly flushMs: number } | undefined;
  /** Undefined without a collector: nothing is recorded, trace context is still passed on. */
  readonly tracing:
    | {
        readonly url: string;
        readonly headers: ReadonlyArray<readonly [string, string]>;
        readonly flushMs: number;
      }
    | undefined;
  /** Whether a new trace (no traceparent came) is recorded. */
  readonly sampleNew: (traceId: string) => boolean;
}

const never = () => false;

export function compileObservability(spec: ObservabilitySpec): ObservabilityPlan {
  const { accessLog, metrics, tracing } = spec;
  const collector = tracing.collector;
  const url =
    collector === undefined ? undefined : collector.replace(/\/+$/, '').replace(/(\/v1\/traces)?$/, '/v1/traces');
  const ratio = tracing.sampling;
  return {
    accessLog: accessLog.enabled
      ? { user: accessLog.user, clientIp: accessLog.clientIp, successSampling: accessLog.successSampling }
      : undefined,
    metrics: metrics.enabled ? { names: metrics.names, flushMs: metrics.flushInterval * 1000 } : undefined,
    tracing:
      url === undefined
        ? undefined
        : {
            url,
            headers: Object.entries(tracing.headers).map(([name, { env }]) => [name, env] as const),
            flushMs: tracing.flushInterval * 1000,
          },
    sampleNew: url === undefined || ratio <= 0 ? never : (traceId) => sampledByRatio(traceId, ratio),
  };
}

/** The plan of a config without an observability section (tests building plans by hand). */
export const DEFAULT_OBSERVABILITY: ObservabilityPlan = {
  accessLog: { user: 'sub', clientIp: false, successSampling: 1 },
  metrics: { names: 'meshwork', flushMs: 1000 },
  tracing: undefined,
  sampleNew: never,
};
