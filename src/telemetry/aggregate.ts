/**
 * The mesh-wide totals, as the telemetry Durable Object keeps them: every isolate's batches
 * summed into cumulative counters and histograms (Prometheus's view, persisted so they survive
 * a restart), and a one-minute window per edge and per rate-limit key (the dashboard's view).
 * Pure state: the object feeds it batches and the time, and reads it back; tests do the same
 * with a made-up clock.
 */
import {
  COUNTERS,
  DURATION_BUCKETS_MS,
  requestKey,
  type CounterName,
  type RequestDelta,
  type RequestLabels,
  type TelemetryBatch,
} from './metrics.ts';
import type { EdgeStats, HotKey, TelemetryOverview } from './overview.ts';

export const SLOT_MS = 5_000;
export const WINDOW_SLOTS = 12;
export const WINDOW_MS = SLOT_MS * WINDOW_SLOTS;
/** Cumulative series kept (each persisted): beyond it new series are dropped and counted. */
export const MAX_TOTAL_SERIES = 20_000;
/** Request series per source workload: one workload (a compromised service) cannot use up the rest. */
export const MAX_SERIES_PER_SOURCE = 4_000;
const MAX_HOT = 1000;
/** Hot keys per reporting workload, so that one cannot crowd out the others'. */
const MAX_HOT_PER_SOURCE = 500;
const NBUCKETS = DURATION_BUCKETS_MS.length + 1;

export interface RequestTotal {
  l: RequestLabels;
  n: number;
  sum: number;
  b: number[];
}

export interface CounterTotal {
  name: CounterName;
  v: string[];
  n: number;
  /** Who reported it (its share of the series): "gateway" or a service. */
  src?: string;
}

interface Slot {
  at: number;
  n: number;
  err: number;
  cerr: number;
  b: number[];
}

interface HotSlot {
  at: number;
  allowed: number;
  limited: number;
}

/** A persisted entry: its storage key and value (what the object writes after a batch). */
export type StoredTotal = { kind: 'r'; t: RequestTotal } | { kind: 'c'; t: CounterTotal };

const slotOf = (now: number) => Math.floor(now / SLOT_MS) * SLOT_MS;

function addInto(target: number[], add: readonly number[]): void {
  for (let i = 0; i < NBUCKETS; i++) target[i]! += add[i] ?? 0;
}

/** histogram_quantile over non-cumulative bucket counts: linear within the bucket, as PromQL does. */
export function quantile(q: number, buckets: readonly number[]): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < NBUCKETS; i++) {
    const c = buckets[i]!;
    if (seen + c >= rank && c > 0) {
      // The +Inf bucket: the highest finite bound, as histogram_quantile answers.
      if (i === DURATION_BUCKETS_MS.length) return DURATION_BUCKETS_MS[i - 1]!;
      const lower = i === 0 ? 0 : DURATION_BUCKETS_MS[i - 1]!;
      const upper = DURATION_BUCKETS_MS[i]!;
      return lower + (upper - lower) * ((rank - seen) / c);
    }
    seen += c;
  }
  return DURATION_BUCKETS_MS.at(-1)!;
}

/** Kiali's edge colours: degraded from 0.1% errors, failure from 20%. */
export function healthOf(requests: number, errorRate: number): EdgeStats['health'] {
  if (requests === 0) return 'idle';
  if (errorRate >= 0.2) return 'failure';
  if (errorRate >= 0.001) return 'degraded';
  return 'healthy';
}

export class Aggregate {
  readonly requests = new Map<string, RequestTotal>();
  readonly counters = new Map<string, CounterTotal>();
  /** Storage keys changed since takeDirty(). */
  readonly #dirty = new Set<string>();
  readonly #edges = new Map<string, { source: string; destination: string; slots: Slot[] }>();
  readonly #hot = new Map<string, { policy: string; key: string; src: string; slots: HotSlot[] }>();
  readonly #hotPerSource = new Map<string, number>();
  /** Since when this object has been counting (the window is shorter until a minute has passed). */
  readonly #since: number;
  readonly #perSource = new Map<string, number>();
  dropped = 0;

  constructor(now: number) {
    this.#since = now;
  }

  /** Puts back what storage held (at start-up). */
  load(entries: Iterable<StoredTotal>): void {
    for (const e of entries) {
      if (e.kind === 'r') {
        this.requests.set(requestKey(e.t.l), e.t);
        this.#perSource.set(e.t.l.source, (this.#perSource.get(e.t.l.source) ?? 0) + 1);
      } else this.counters.set(counterKey(e.t.name, e.t.v), e.t);
    }
  }

  /** `source`: who sent the batch (the gateway, or the service the Telemetry entrypoint verified). */
  apply(batch: TelemetryBatch, now: number, source = 'gateway'): void {
    this.dropped += batch.dropped;
    const slot = slotOf(now);
    for (const d of batch.requests) {
      this.#addRequest(d, source);
      this.#addEdge(d, slot, now);
    }
    for (const c of batch.counters) {
      const key = counterKey(c.name, c.v);
      const t = this.counters.get(key);
      if (t) t.n += c.n;
      else if (this.#room(source)) {
        this.#perSource.set(source, (this.#perSource.get(source) ?? 0) + 1);
        this.counters.set(key, { name: c.name, v: c.v, n: c.n, src: source });
      } else {
        this.dropped++;
        continue;
      }
      this.#dirty.add(`c:${key}`);
    }
    for (const h of batch.hotKeys) {
      const key = `${h.policy}\u0001${h.key}`;
      let e = this.#hot.get(key);
      if (!e) {
        if (this.#hot.size >= MAX_HOT || (this.#hotPerSource.get(source) ?? 0) >= MAX_HOT_PER_SOURCE)
          this.#pruneHot(now);
        if (this.#hot.size >= MAX_HOT || (this.#hotPerSource.get(source) ?? 0) >= MAX_HOT_PER_SOURCE) continue;
        this.#hot.set(key, (e = { policy: h.policy, key: h.key, src: source, slots: [] }));
        this.#hotPerSource.set(source, (this.#hotPerSource.get(source) ?? 0) + 1);
      }
      let s = e.slots.at(-1);
      if (s?.at !== slot) {
        e.slots.push((s = { at: slot, allowed: 0, limited: 0 }));
        while (e.slots.length > 0 && e.slots[0]!.at <= now - WINDOW_MS - SLOT_MS) e.slots.shift();
      }
      s.allowed += h.allowed;
      s.limited += h.limited;
    }
  }

  /** Whether `source` may add a series: the store has room, and so has its share. */
  #room(source: string): boolean {
    return (
      this.requests.size + this.counters.size < MAX_TOTAL_SERIES &&
      (this.#perSource.get(source) ?? 0) < MAX_SERIES_PER_SOURCE
    );
  }

  #addRequest(d: RequestDelta, source: string): void {
    const key = requestKey(d.l);
    let t = this.requests.get(key);
    if (!t) {
      if (!this.#room(source)) {
        this.dropped++;
        return;
      }
      this.#perSource.set(source, (this.#perSource.get(source) ?? 0) + 1);
      this.requests.set(key, (t = { l: d.l, n: 0, sum: 0, b: new Array<number>(NBUCKETS).fill(0) }));
    }
    t.n += d.n;
    t.sum += d.sum;
    addInto(t.b, d.b);
    this.#dirty.add(`r:${key}`);
  }

  #addEdge(d: RequestDelta, slot: number, now: number): void {
    const key = `${d.l.source}\u0001${d.l.service}`;
    let e = this.#edges.get(key);
    if (!e) this.#edges.set(key, (e = { source: d.l.source, destination: d.l.service, slots: [] }));
    let s = e.slots.at(-1);
    if (s?.at !== slot) {
      e.slots.push((s = { at: slot, n: 0, err: 0, cerr: 0, b: new Array<number>(NBUCKETS).fill(0) }));
      while (e.slots.length > 0 && e.slots[0]!.at <= now - WINDOW_MS - SLOT_MS) e.slots.shift();
    }
    s.n += d.n;
    if (d.l.code >= 500) s.err += d.n;
    else if (d.l.code >= 400) s.cerr += d.n;
    addInto(s.b, d.b);
  }

  #pruneHot(now: number): void {
    for (const [k, e] of this.#hot)
      if ((e.slots.at(-1)?.at ?? 0) <= now - WINDOW_MS) {
        this.#hot.delete(k);
        this.#hotPerSource.set(e.src, (this.#hotPerSource.get(e.src) ?? 1) - 1);
      }
  }

  /** What changed since the last call, to write to storage. */
  takeDirty(): Array<[string, StoredTotal]> {
    const out: Array<[string, StoredTotal]> = [];
    for (const k of this.#dirty) {
      const id = k.slice(2);
      if (k.startsWith('r:')) {
        const t = this.requests.get(id);
        if (t) out.push([k, { kind: 'r', t }]);
      } else {
        const t = this.counters.get(id);
        if (t) out.push([k, { kind: 'c', t }]);
      }
    }
    this.#dirty.clear();
    return out;
  }

  overview(now: number): TelemetryOverview {
    // Whole slots only, the current one included: a minute back from the current slot's start.
    const from = slotOf(now) + SLOT_MS - WINDOW_MS;
    // The window is as long as the object has been counting, up to a minute.
    const windowMs = Math.max(SLOT_MS, Math.min(now - from, now - this.#since));
    const edges: EdgeStats[] = [];
    for (const e of this.#edges.values()) {
      let n = 0;
      let err = 0;
      let cerr = 0;
      const b = new Array<number>(NBUCKETS).fill(0);
      for (const s of e.slots) {
        if (s.at < from) continue;
        n += s.n;
        err += s.err;
        cerr += s.cerr;
        addInto(b, s.b);
      }
      const errorRate = n === 0 ? 0 : err / n;
      edges.push({
        source: e.source,
        destination: e.destination,
        requests: n,
        errors: err,
        clientErrors: cerr,
        rps: n / (windowMs / 1000),
        errorRate,
        p50Ms: quantile(0.5, b),
        p99Ms: quantile(0.99, b),
        health: healthOf(n, errorRate),
      });
    }
    edges.sort((a, b) => a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination));
    const hotKeys: HotKey[] = [];
    for (const e of this.#hot.values()) {
      let allowed = 0;
      let limited = 0;
      for (const s of e.slots) {
        if (s.at < from) continue;
        allowed += s.allowed;
        limited += s.limited;
      }
      if (allowed + limited > 0) hotKeys.push({ policy: e.policy, key: e.key, allowed, limited });
    }
    hotKeys.sort((a, b) => b.limited - a.limited || b.allowed + b.limited - (a.allowed + a.limited));
    const totals = { requests: 0, errors: 0, limited: 0, authFailures: 0, retries: 0 };
    for (const t of this.requests.values()) {
      totals.requests += t.n;
      if (t.l.code >= 500) totals.errors += t.n;
    }
    for (const c of this.counters.values()) {
      if (c.name === 'auth_failures') totals.authFailures += c.n;
      else if (c.name === 'retries') totals.retries += c.n;
      else if (c.name === 'ratelimit_decisions' && c.v[2] === 'limited') totals.limited += c.n;
    }
    return { now, windowSeconds: windowMs / 1000, edges, hotKeys: hotKeys.slice(0, 20), totals };
  }
}

export function counterKey(name: CounterName, values: readonly string[]): string {
  return `${name}\u0001${values.join('\u0001')}`;
}

/** A counter's label values, checked against its label list (a report from a service is not trusted). */
export function validCounter(name: string, values: unknown): name is CounterName {
  return (
    Object.hasOwn(COUNTERS, name) &&
    Array.isArray(values) &&
    values.length === COUNTERS[name as CounterName].length &&
    values.every((v) => typeof v === 'string' && v.length <= 200)
  );
}
