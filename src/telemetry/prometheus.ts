/**
 * The Prometheus text exposition format 0.0.4 of the aggregated metrics. Hand-written, because
 * it is a few lines of a stable, simple format and the client libraries that write it are built
 * for Node's process model (a registry of live metric objects), not for rendering totals a
 * Durable Object holds.
 *
 * Names: meshwork_* in base units (seconds), as Prometheus's conventions and promtool's lint
 * want; or istio_* exactly as Istio's standard metrics are named (durations in milliseconds), so
 * that existing Istio dashboards and alerts query them unchanged.
 */
import type { Aggregate } from './aggregate.ts';
import { COUNTERS, DURATION_BUCKETS_MS, type CounterName, type RequestLabels } from './metrics.ts';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricNames = 'meshwork' | 'istio';

const HELP: Record<CounterName, string> = {
  auth_failures: 'Requests refused by end-user authentication or authorization, by route and reason.',
  ratelimit_decisions: 'Rate-limit decisions, by policy, enforcer (gateway or service) and decision.',
  retries: 'Retries of calls, by source workload and destination service.',
  ejections: 'Endpoints ejected by outlier detection.',
  upstream_errors: 'Tries whose endpoint could not be reached or did not answer in time.',
  jwks_fetches: 'Fetches of remote JSON Web Key Sets, by issuer and result.',
};

/** Label value escaping of the text format: backslash, double quote and line feed. */
function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function requestLabels(l: RequestLabels): string {
  const pairs: Array<[string, string]> = [
    ['reporter', 'source'],
    ['source_workload', l.source],
    ['source_canonical_service', l.source],
    ['destination_service', l.service],
    ['destination_service_name', l.service],
    ['destination_canonical_service', l.service],
    ['destination_workload', l.workload],
    ['destination_version', l.version],
    ['destination_canonical_revision', l.version],
    ['route', l.route],
    ['request_protocol', 'http'],
    ['response_code', String(l.code)],
    ['response_flags', l.flags],
  ];
  return pairs.map(([k, v]) => `${k}="${esc(v)}"`).join(',');
}

/** Bucket boundaries as `le` values: seconds for meshwork names, milliseconds for istio ones. */
function leValues(names: MetricNames): string[] {
  return DURATION_BUCKETS_MS.map((ms) => String(names === 'istio' ? ms : ms / 1000));
}

export function renderPrometheus(agg: Aggregate, names: MetricNames): string {
  const prefix = names === 'istio' ? 'istio' : 'meshwork';
  const lines: string[] = [];
  const requests = `${prefix}_requests_total`;
  lines.push(
    `# HELP ${requests} Requests, by source workload, destination service, version and workload, route, response code and response flags.`,
    `# TYPE ${requests} counter`,
  );
  const totals = [...agg.requests.values()];
  for (const t of totals) lines.push(`${requests}{${requestLabels(t.l)}} ${t.n}`);

  const duration = names === 'istio' ? 'istio_request_duration_milliseconds' : 'meshwork_request_duration_seconds';
  const scale = names === 'istio' ? 1 : 1 / 1000;
  const le = leValues(names);
  lines.push(
    `# HELP ${duration} Time from receiving a request to the start of its response, by the same labels as ${requests}.`,
    `# TYPE ${duration} histogram`,
  );
  for (const t of totals) {
    const labels = requestLabels(t.l);
    let cumulative = 0;
    for (let i = 0; i < le.length; i++) {
      cumulative += t.b[i]!;
      lines.push(`${duration}_bucket{${labels},le="${le[i]}"} ${cumulative}`);
    }
    lines.push(`${duration}_bucket{${labels},le="+Inf"} ${t.n}`);
    lines.push(`${duration}_sum{${labels}} ${t.sum * scale}`);
    lines.push(`${duration}_count{${labels}} ${t.n}`);
  }

  const byName = new Map<CounterName, string[]>();
  for (const c of agg.counters.values()) {
    const labels = COUNTERS[c.name].map((k, i) => `${k}="${esc(c.v[i]!)}"`).join(',');
    let list = byName.get(c.name);
    if (!list) byName.set(c.name, (list = []));
    list.push(`${prefix}_${c.name}_total{${labels}} ${c.n}`);
  }
  for (const name of Object.keys(COUNTERS) as CounterName[]) {
    const metric = `${prefix}_${name}_total`;
    lines.push(`# HELP ${metric} ${HELP[name]}`, `# TYPE ${metric} counter`, ...(byName.get(name) ?? []));
  }
  const dropped = `${prefix}_telemetry_dropped_series_total`;
  lines.push(
    `# HELP ${dropped} Series not recorded because a buffer or the store was full (raise no limit: look for a label with unbounded values).`,
    `# TYPE ${dropped} counter`,
    `${dropped} ${agg.dropped}`,
  );
  return `${lines.join('\n')}\n`;
}
