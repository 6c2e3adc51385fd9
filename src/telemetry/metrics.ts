/**
 * Request metrics as an isolate gathers them between flushes: counts, a latency histogram per
 * series, named counters and rate-limit hot keys. Recording is a few map updates; nothing here
 * does I/O. The buffer is drained into a TelemetryBatch about once a second and sent to the
 * telemetry Durable Object, which sums every isolate's batches (aggregate.ts).
 *
 * Labels follow Istio's standard metrics (istio_requests_total and friends) so that dashboards
 * and queries carry over; docs/observability.md has the mapping.
 */

/**
 * Istio's default duration buckets (milliseconds): the same `le` boundaries, so an Istio
 * latency panel reads the same. Exported in seconds under meshwork's own names (base units, as
 * Prometheus's conventions and `promtool check metrics` want), in milliseconds under istio_ names.
 */
export const DURATION_BUCKETS_MS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
] as const;

/** One series of meshwork_requests_total / the duration histogram. */
export interface RequestLabels {
  /** source_workload: "gateway" or the calling service. */
  source: string;
  /** destination_service: the service called, "unknown" when no route chose one. */
  service: string;
  /** destination_version: the endpoint's version, "unknown" when none was chosen or it has none. */
  version: string;
  /** destination_workload: the endpoint (binding or registered name), "unknown" when none was tried. */
  workload: string;
  /** The gateway route's name; "" for east-west calls. */
  route: string;
  code: number;
  /** Envoy's response flags ("-" for none), e.g. NR, UH, UF, UT, RL, UAEX, FI. */
  flags: string;
}

export interface RequestDelta {
  l: RequestLabels;
  n: number;
  /** Sum of durations, milliseconds. */
  sum: number;
  /** Per bucket (not cumulative): DURATION_BUCKETS_MS.length finite buckets, then +Inf. */
  b: number[];
}

/** The named counters besides requests, with the labels each carries. */
export const COUNTERS = {
  auth_failures: ['route', 'reason'],
  ratelimit_decisions: ['policy', 'enforcer', 'decision'],
  retries: ['source_workload', 'destination_service'],
  ejections: ['destination_service', 'endpoint'],
  upstream_errors: ['source_workload', 'destination_service', 'endpoint', 'kind'],
  jwks_fetches: ['issuer', 'result'],
} as const;
export type CounterName = keyof typeof COUNTERS;

export interface CounterDelta {
  name: CounterName;
  /** Values in the order COUNTERS[name] lists the labels. */
  v: string[];
  n: number;
}

export interface HotKeyDelta {
  policy: string;
  key: string;
  allowed: number;
  limited: number;
}

/** What an isolate sends the telemetry object: everything it saw since its last flush. */
export interface TelemetryBatch {
  requests: RequestDelta[];
  counters: CounterDelta[];
  hotKeys: HotKeyDelta[];
  /** Series this isolate dropped since its last flush because its buffer was full. */
  dropped: number;
}

/** The audience of the identity token a service shows the gateway's Telemetry entrypoint. */
export const TELEMETRY_AUDIENCE = 'meshwork-telemetry';

/** Series kept between flushes: far more than a mesh's routes x services x codes. */
const MAX_SERIES = 4000;
/** Rate-limit keys kept between flushes (the hottest matter; the object keeps the top). */
const MAX_HOT_KEYS = 500;

export function bucketIndex(ms: number): number {
  let i = 0;
  while (i < DURATION_BUCKETS_MS.length && ms > DURATION_BUCKETS_MS[i]!) i++;
  return i;
}

const SEP = '\u0001';

export function requestKey(l: RequestLabels): string {
  return l.source + SEP + l.service + SEP + l.version + SEP + l.workload + SEP + l.route + SEP + l.code + SEP + l.flags;
}

export class MetricsBuffer {
  #requests = new Map<string, RequestDelta>();
  #counters = new Map<string, CounterDelta>();
  #hot = new Map<string, HotKeyDelta>();
  #dropped = 0;

  get empty(): boolean {
    return this.#requests.size === 0 && this.#counters.size === 0 && this.#hot.size === 0 && this.#dropped === 0;
  }

  request(l: RequestLabels, ms: number): void {
    const key = requestKey(l);
    let d = this.#requests.get(key);
    if (!d) {
      if (this.#requests.size >= MAX_SERIES) {
        this.#dropped++;
        return;
      }
      d = { l, n: 0, sum: 0, b: new Array<number>(DURATION_BUCKETS_MS.length + 1).fill(0) };
      this.#requests.set(key, d);
    }
    d.n++;
    d.sum += ms;
    d.b[bucketIndex(ms)]!++;
  }

  count(name: CounterName, values: string[], n = 1): void {
    const key = name + SEP + values.join(SEP);
    const d = this.#counters.get(key);
    if (d) d.n += n;
    else if (this.#counters.size < MAX_SERIES) this.#counters.set(key, { name, v: values, n });
    else this.#dropped++;
  }

  hotKey(policy: string, key: string, limited: boolean): void {
    const k = policy + SEP + key;
    let d = this.#hot.get(k);
    if (!d) {
      if (this.#hot.size >= MAX_HOT_KEYS) return;
      this.#hot.set(k, (d = { policy, key, allowed: 0, limited: 0 }));
    }
    if (limited) d.limited++;
    else d.allowed++;
  }

  /** Puts a batch back (its flush failed): sent with the next one. */
  merge(batch: TelemetryBatch): void {
    for (const d of batch.requests) {
      const key = requestKey(d.l);
      const mine = this.#requests.get(key);
      if (!mine) {
        if (this.#requests.size < MAX_SERIES) this.#requests.set(key, d);
        else this.#dropped++;
        continue;
      }
      mine.n += d.n;
      mine.sum += d.sum;
      for (let i = 0; i < mine.b.length; i++) mine.b[i]! += d.b[i] ?? 0;
    }
    for (const c of batch.counters) this.count(c.name, c.v, c.n);
    for (const h of batch.hotKeys) {
      const k = h.policy + SEP + h.key;
      const mine = this.#hot.get(k);
      if (mine) {
        mine.allowed += h.allowed;
        mine.limited += h.limited;
      } else if (this.#hot.size < MAX_HOT_KEYS) this.#hot.set(k, h);
    }
    this.#dropped += batch.dropped;
  }

  drain(): TelemetryBatch {
    const batch: TelemetryBatch = {
      requests: [...this.#requests.values()],
      counters: [...this.#counters.values()],
      hotKeys: [...this.#hot.values()],
      dropped: this.#dropped,
    };
    this.#requests.clear();
    this.#counters.clear();
    this.#hot.clear();
    this.#dropped = 0;
    return batch;
  }
}

/** A report's most entries (requests, counters and hot keys together), as the Telemetry entrypoint takes them. */
export const MAX_REPORT_ENTRIES = 2000;

/** A batch in reports of at most `max` entries each (an isolate's buffer holds more than one report). */
export function splitBatch(batch: TelemetryBatch, max = MAX_REPORT_ENTRIES): TelemetryBatch[] {
  const entries = batch.requests.length + batch.counters.length + batch.hotKeys.length;
  if (entries <= max) return [batch];
  const out: TelemetryBatch[] = [];
  let current: TelemetryBatch = { requests: [], counters: [], hotKeys: [], dropped: batch.dropped };
  let size = 0;
  /** The report to add one entry to: the current one, or a new one when it is full. */
  const next = (): TelemetryBatch => {
    if (size === max) {
      out.push(current);
      current = { requests: [], counters: [], hotKeys: [], dropped: 0 };
      size = 0;
    }
    size++;
    return current;
  };
  for (const r of batch.requests) next().requests.push(r);
  for (const c of batch.counters) next().counters.push(c);
  for (const h of batch.hotKeys) next().hotKeys.push(h);
  out.push(current);
  return out;
}
