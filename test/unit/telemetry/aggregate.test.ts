import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Aggregate, MAX_SERIES_PER_SOURCE, quantile, SLOT_MS, WINDOW_MS } from '../../../src/telemetry/aggregate.ts';
import { DURATION_BUCKETS_MS, MetricsBuffer, type RequestLabels } from '../../../src/telemetry/metrics.ts';
import { renderPrometheus } from '../../../src/telemetry/prometheus.ts';

const T0 = 1_700_000_000_000;

function labels(over: Partial<RequestLabels> = {}): RequestLabels {
  return {
    source: 'gateway',
    service: 'service-a',
    version: 'unknown',
    workload: 'service-a/SERVICE_A',
    route: 'service-a',
    code: 200,
    flags: '-',
    ...over,
  };
}

/** What isolates would send: `n` requests of `ms` each with these labels. */
function batchOf(entries: Array<[Partial<RequestLabels>, number, number]>) {
  const buf = new MetricsBuffer();
  for (const [l, n, ms] of entries) for (let i = 0; i < n; i++) buf.request(labels(l), ms);
  return buf.drain();
}

describe('isolate buffer', () => {
  it('counts per series with a histogram, and starts empty after a drain', () => {
    const buf = new MetricsBuffer();
    buf.request(labels(), 3);
    buf.request(labels(), 40);
    buf.request(labels({ code: 503 }), 7);
    buf.count('retries', ['gateway', 'service-a']);
    buf.count('retries', ['gateway', 'service-a'], 2);
    buf.hotKey('per-user', 'alice', false);
    buf.hotKey('per-user', 'alice', true);
    const batch = buf.drain();
    expect(buf.empty).toBe(true);
    const ok = batch.requests.find((r) => r.l.code === 200)!;
    expect(ok.n).toBe(2);
    expect(ok.sum).toBe(43);
    // 3 ms lands in (1, 5], 40 ms in (25, 50].
    expect(ok.b[DURATION_BUCKETS_MS.indexOf(5)]).toBe(1);
    expect(ok.b[DURATION_BUCKETS_MS.indexOf(50)]).toBe(1);
    expect(batch.counters).toEqual([{ name: 'retries', v: ['gateway', 'service-a'], n: 3 }]);
    expect(batch.hotKeys).toEqual([{ policy: 'per-user', key: 'alice', allowed: 1, limited: 1 }]);
  });

  it('a failed flush put back is sent with the next one, nothing lost or doubled', () => {
    const buf = new MetricsBuffer();
    buf.request(labels(), 1);
    const first = buf.drain();
    buf.request(labels(), 1);
    buf.merge(first);
    const again = buf.drain();
    expect(again.requests).toHaveLength(1);
    expect(again.requests[0]!.n).toBe(2);
  });
});

describe('mesh-wide aggregate', () => {
  it('sums batches from many isolates into cumulative totals', () => {
    const agg = new Aggregate(T0);
    agg.apply(batchOf([[{}, 3, 2]]), T0 + 100);
    agg.apply(
      batchOf([
        [{}, 2, 2],
        [{ source: 'service-a', service: 'service-b', route: '' }, 4, 9],
      ]),
      T0 + 200,
    );
    const totals = [...agg.requests.values()].map((t) => [t.l.source, t.l.service, t.n]);
    expect(totals).toEqual([
      ['gateway', 'service-a', 5],
      ['service-a', 'service-b', 4],
    ]);
  });

  it('survives a restart: what it wrote back loads into a new object with the same totals', () => {
    const agg = new Aggregate(T0);
    agg.apply(batchOf([[{}, 3, 2]]), T0);
    const written = new Map(agg.takeDirty());
    agg.apply(batchOf([[{}, 1, 2]]), T0 + 1);
    for (const [k, v] of agg.takeDirty()) written.set(k, v);
    const restarted = new Aggregate(T0 + 10_000);
    restarted.load(structuredClone([...written.values()]));
    expect([...restarted.requests.values()][0]!.n).toBe(4);
    expect(renderPrometheus(restarted, 'meshwork')).toBe(renderPrometheus(agg, 'meshwork'));
  });

  it('the window gives rate, error share, p99 and Kiali health per edge, and forgets after a minute', () => {
    const agg = new Aggregate(T0);
    const now = T0 + WINDOW_MS;
    agg.apply(
      batchOf([
        [{}, 95, 20],
        [{ code: 503 }, 5, 300],
      ]),
      now - 1000,
    );
    const edge = agg.overview(now).edges[0]!;
    expect(edge).toMatchObject({ source: 'gateway', destination: 'service-a', requests: 100, errors: 5 });
    // Whole slots: the 55 s from the oldest slot kept to now (the current slot has just begun).
    expect(edge.rps).toBeCloseTo(100 / 55, 5);
    expect(edge.errorRate).toBeCloseTo(0.05, 5);
    expect(edge.health).toBe('degraded');
    // 99th of 100: within the (250, 500] bucket the 5 slow ones fall in.
    expect(edge.p99Ms).toBeGreaterThan(250);
    expect(edge.p99Ms).toBeLessThanOrEqual(500);
    expect(edge.p50Ms).toBeGreaterThan(10);
    expect(edge.p50Ms).toBeLessThanOrEqual(25);
    const later = agg.overview(now + WINDOW_MS + SLOT_MS);
    expect(later.edges[0]).toMatchObject({ requests: 0, health: 'idle', p99Ms: null });
    // The cumulative totals stay.
    expect(later.totals.requests).toBe(100);
    expect(later.totals.errors).toBe(5);
  });

  it('colours an edge red from 20% errors and green below 0.1%', () => {
    const agg = new Aggregate(T0);
    agg.apply(
      batchOf([
        [{}, 4, 1],
        [{ code: 500 }, 1, 1],
        [{ service: 'b' }, 1000, 1],
      ]),
      T0 + 1,
    );
    const [a, b] = agg.overview(T0 + 2).edges;
    expect([a!.destination, a!.health]).toEqual(['b', 'healthy']);
    expect([b!.destination, b!.health]).toEqual(['service-a', 'failure']);
  });

  it('one source cannot take every series: beyond its share its new series are dropped and counted, others still recorded', () => {
    const agg = new Aggregate(T0);
    // Two isolates' worth (each buffer holds fewer than the object's share).
    for (const half of [0, 1]) {
      const flood = new MetricsBuffer();
      for (let i = 0; i < (MAX_SERIES_PER_SOURCE + 10) / 2; i++)
        flood.request(labels({ source: 'service-c', version: `v${half}-${i}` }), 1);
      agg.apply(flood.drain(), T0, 'service-c');
    }
    agg.apply(batchOf([[{}, 1, 1]]), T0);
    const bySource = (s: string) => [...agg.requests.values()].filter((t) => t.l.source === s).length;
    expect(bySource('service-c')).toBe(MAX_SERIES_PER_SOURCE);
    expect(bySource('gateway')).toBe(1);
    expect(agg.dropped).toBe(10);
  });

  it('ranks hot keys by refusals, then by use', () => {
    const agg = new Aggregate(T0);
    const buf = new MetricsBuffer();
    for (let i = 0; i < 10; i++) buf.hotKey('per-user', 'busy', false);
    buf.hotKey('per-user', 'limited', true);
    buf.hotKey('per-user', 'quiet', false);
    agg.apply(buf.drain(), T0);
    expect(agg.overview(T0 + 1).hotKeys.map((h) => h.key)).toEqual(['limited', 'busy', 'quiet']);
  });
});

describe('quantiles', () => {
  it('interpolates within a bucket as histogram_quantile does', () => {
    const b = new Array<number>(DURATION_BUCKETS_MS.length + 1).fill(0);
    b[DURATION_BUCKETS_MS.indexOf(100)] = 10; // all in (50, 100]
    expect(quantile(0.5, b)).toBeCloseTo(75, 5);
    expect(quantile(1, b)).toBeCloseTo(100, 5);
    expect(quantile(0.5, new Array<number>(b.length).fill(0))).toBeNull();
  });
});

describe('Prometheus text', () => {
  const agg = new Aggregate(T0);
  agg.apply(
    {
      ...batchOf([
        [{}, 3, 2],
        [{ code: 404, flags: 'NR', service: 'unknown', route: '', workload: 'unknown' }, 1, 0],
        [{ route: 'with "quotes" \\ and\nnewline' }, 1, 1],
      ]),
      counters: [
        { name: 'auth_failures', v: ['service-a', 'invalid_token'], n: 2 },
        { name: 'ratelimit_decisions', v: ['per-user', 'gateway', 'limited'], n: 1 },
      ],
    },
    T0,
  );

  it('is exposition format 0.0.4 that promtool accepts, under both naming schemes', () => {
    for (const names of ['meshwork', 'istio'] as const) {
      const text = renderPrometheus(agg, names);
      const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      const out = (r.stdout + r.stderr).trim();
      if (names === 'meshwork') {
        expect(out).toBe('');
        expect(r.status).toBe(0);
      } else {
        // Istio's own name uses milliseconds, which promtool's lint flags; nothing else may be flagged.
        expect(out.split('\n')).toEqual([
          'istio_request_duration_milliseconds use base unit "seconds" instead of "milliseconds"',
        ]);
      }
    }
  });

  it("carries Istio's label names and escapes label values", () => {
    const text = renderPrometheus(agg, 'meshwork');
    expect(text).toContain(
      'meshwork_requests_total{reporter="source",source_workload="gateway",source_canonical_service="gateway",destination_service="service-a",destination_service_name="service-a",destination_canonical_service="service-a",destination_workload="service-a/SERVICE_A",destination_version="unknown",destination_canonical_revision="unknown",route="service-a",request_protocol="http",response_code="200",response_flags="-"} 3',
    );
    expect(text).toContain('route="with \\"quotes\\" \\\\ and\\nnewline"');
    expect(text).toContain('meshwork_auth_failures_total{route="service-a",reason="invalid_token"} 2');
    // Seconds under meshwork's names: 2 ms is in the 0.005 bucket; milliseconds under Istio's.
    expect(text).toMatch(/meshwork_request_duration_seconds_bucket\{[^}]*route="service-a"[^}]*le="0\.005"\} 3/);
    expect(renderPrometheus(agg, 'istio')).toMatch(
      /istio_request_duration_milliseconds_bucket\{[^}]*route="service-a"[^}]*le="5"\} 3/,
    );
    expect(renderPrometheus(agg, 'istio')).toContain('istio_requests_total{');
  });
});
