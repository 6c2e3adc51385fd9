import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Config } from '../../../src/config/schema.ts';
import { MetricsBuffer, splitBatch, type RequestLabels, type TelemetryBatch } from '../../../src/telemetry/metrics.ts';
import { compileObservability } from '../../../src/telemetry/plan.ts';
import { Recorder } from '../../../src/telemetry/recorder.ts';

const plan = compileObservability(Config.parse({ observability: { metrics: { flushInterval: '1s' } } }).observability);
const L: RequestLabels = {
  source: 'gateway',
  service: 's',
  version: 'unknown',
  workload: 'unknown',
  route: 'r',
  code: 200,
  flags: '-',
};
const count = (batches: TelemetryBatch[]) => batches.flatMap((b) => b.requests).reduce((n, r) => n + r.n, 0);

describe('the recorder sends what requests recorded, after them', () => {
  let sent: TelemetryBatch[];
  let pending: Array<Promise<unknown>>;
  const waitUntil = (p: Promise<unknown>) => void pending.push(p);
  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    pending = [];
  });
  afterEach(() => vi.useRealTimers());

  function recorder(send: (b: TelemetryBatch) => Promise<void>, ready = true) {
    const r = new Recorder();
    r.configure({ service: 'gateway', version: undefined }, { ready: () => ready, send: (_env, b) => send(b) });
    return r;
  }
  const request = (r: Recorder) => {
    r.metrics.request(L, 1);
    r.schedule(plan, {}, waitUntil);
  };

  it('one send per flush interval, whatever the number of requests', async () => {
    const r = recorder(async (b) => void sent.push(b));
    for (let i = 0; i < 50; i++) request(r);
    expect(pending).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toHaveLength(1);
    expect(count(sent)).toBe(50);
  });

  it('what is recorded while a send is on its way goes in the next one', async () => {
    let release!: () => void;
    const r = recorder((b) => {
      sent.push(b);
      return new Promise<void>((ok) => (release = ok));
    });
    request(r);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toHaveLength(1);
    request(r); // while the first send has not answered
    release();
    await vi.advanceTimersByTimeAsync(1000);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(count(sent)).toBe(2);
  });

  it('a failed or hanging send keeps its counts for the next', async () => {
    let calls = 0;
    const r = recorder(async (b) => {
      calls++;
      if (calls === 1) throw new Error('object down');
      if (calls === 2) return new Promise<void>(() => {}); // never answers
      sent.push(b);
    });
    request(r);
    await vi.advanceTimersByTimeAsync(1000);
    request(r);
    await vi.advanceTimersByTimeAsync(1000 + 5000); // the hanging send is given up after 5 s
    request(r);
    await vi.advanceTimersByTimeAsync(1000);
    expect(count(sent)).toBe(3);
    expect(r.lost.metricFlushes).toBe(2);
  });

  it('a worker without the binding keeps nothing and schedules nothing', () => {
    const r = recorder(async (b) => void sent.push(b), false);
    request(r);
    expect(pending).toHaveLength(0);
    expect(r.metrics.empty).toBe(true);
  });
});

describe('reports within the entrypoint size', () => {
  it('splits a large batch without losing or repeating an entry', () => {
    const buf = new MetricsBuffer();
    for (let i = 0; i < 2500; i++) buf.request({ ...L, version: `v${i}` }, 1);
    for (let i = 0; i < 1700; i++) buf.count('retries', ['gateway', `s${i}`]);
    const batch = buf.drain();
    const parts = splitBatch(batch, 2000);
    expect(parts.map((p) => p.requests.length + p.counters.length + p.hotKeys.length)).toEqual([2000, 2000, 200]);
    expect(parts.reduce((n, p) => n + p.requests.length, 0)).toBe(2500);
    expect(parts.reduce((n, p) => n + p.counters.length, 0)).toBe(1700);
    expect(splitBatch(buf.drain())).toHaveLength(1);
  });
});
