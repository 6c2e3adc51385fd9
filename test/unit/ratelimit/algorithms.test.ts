import { describe, expect, it } from 'vitest';
import {
  available,
  giveBack,
  holdBack,
  idleAt,
  level,
  take,
  type BucketState,
  type LimitParams,
} from '../../../src/ratelimit/algorithms.ts';

const SECOND = 1000;

const DAY = 86_400 * SECOND;

/** Runs requests at the given times (ms) and returns which were allowed. */
function run(params: LimitParams, times: number[], cost = 1): boolean[] {
  let state: BucketState | undefined;
  return times.map((t) => {
    const o = take(params, state, cost, t);
    state = o.state;
    return o.decision.allowed;
  });
}

describe('token bucket', () => {
  const p: LimitParams = { algorithm: 'token-bucket', limit: 10, periodMs: SECOND, burst: 20 };

  it('allows a full burst at once, then nothing until tokens refill', () => {
    const allowed = run(p, Array(25).fill(0));
    expect(allowed.filter(Boolean)).toHaveLength(20);
    expect(allowed.slice(20)).toEqual([false, false, false, false, false]);
  });

  it('refills continuously at limit per period', () => {
    let state: BucketState | undefined;
    for (let i = 0; i < 20; i++) state = take(p, state, 1, 0).state;
    expect(take(p, state, 1, 99).decision.allowed).toBe(false); // 0.99 tokens
    const at100 = take(p, state, 1, 100);
    expect(at100.decision.allowed).toBe(true); // 1 token after 100 ms
    expect(take(p, at100.state, 1, 100).decision.allowed).toBe(false);
    expect(available(p, at100.state, 600)).toBe(5);
  });

  it('never holds more than the burst, however long it is idle', () => {
    let state: BucketState | undefined = take(p, undefined, 1, 0).state;
    expect(available(p, state, 3_600 * SECOND)).toBe(20);
    state = take(p, state, 20, 3_600 * SECOND).state;
    expect(take(p, state, 1, 3_600 * SECOND).decision.allowed).toBe(false);
  });

  it('over a long run admits exactly burst + rate x elapsed', () => {
    // A request every 10 ms from 0 to 9.99 s: the bucket's 20 plus 99.9 refilled tokens.
    const allowed = run(
      p,
      Array.from({ length: 1000 }, (_, i) => i * 10),
    );
    expect(allowed.filter(Boolean).length).toBe(20 + 99);
  });

  it('reports remaining, time to full, and the wait for a denied request', () => {
    let state: BucketState | undefined;
    let last;
    for (let i = 0; i < 20; i++) ({ state, decision: last } = take(p, state, 1, 0));
    expect(last).toEqual({ allowed: true, remaining: 0, resetMs: 2000, retryAfterMs: 0 });
    const denied = take(p, state, 3, 50).decision;
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBe(250); // needs 3 tokens, has 0.5, 2.5 more at 10/s
    expect(take(p, take(p, state, 3, 50).state, 3, 300).decision.allowed).toBe(true);
  });

  it('charges the cost of a request', () => {
    const allowed = run(p, Array(8).fill(0), 3);
    expect(allowed.filter(Boolean)).toHaveLength(6); // 6 x 3 = 18 of 20
  });

  it('handles per-day limits without drift', () => {
    const daily: LimitParams = { algorithm: 'token-bucket', limit: 10_000, periodMs: DAY, burst: 10_000 };
    let state: BucketState | undefined;
    for (let i = 0; i < 10_000; i++) state = take(daily, state, 1, 0).state;
    const next = take(daily, state, 1, 0);
    expect(next.decision.allowed).toBe(false);
    expect(next.decision.retryAfterMs).toBe(8_640); // one token every 8.64 s
    expect(take(daily, state, 1, 8_639).decision.allowed).toBe(false);
    expect(take(daily, state, 1, 8_640).decision.allowed).toBe(true);
    expect(available(daily, state, DAY / 2)).toBe(5000);
  });

  it('a cost above the burst can never pass, and says so', () => {
    expect(take(p, undefined, 21, 0).decision).toMatchObject({
      allowed: false,
      retryAfterMs: Number.POSITIVE_INFINITY,
    });
  });

  it('a shrunk bucket (new config) is clamped to its new capacity', () => {
    const state: BucketState = { tokens: 20, at: 0 };
    const smaller = { ...p, burst: 5 };
    expect(available(smaller, state, 0)).toBe(5);
  });

  it('knows when an idle bucket is full again', () => {
    const { state } = take(p, undefined, 20, 1000);
    expect(idleAt(p, state)).toBe(3000);
  });

  it('does not refill the room of units still out on leases', () => {
    const { state } = take(p, undefined, 10, 0); // 10 leased out
    // Two seconds later an untouched bucket would be full (20); with 10 still lent, 10.
    expect(available(p, holdBack(p, state, 10, 2000), 2000)).toBe(10);
    expect(available(p, holdBack(p, state, 0, 2000), 2000)).toBe(20);
  });

  it('takes back unused units, never above the burst', () => {
    const { state } = take(p, undefined, 10, 0);
    expect(available(p, giveBack(p, state, 4, 0), 0)).toBe(14);
    expect(available(p, giveBack(p, state, 40, 0), 0)).toBe(20);
  });
});

describe('GCRA', () => {
  const p: LimitParams = { algorithm: 'gcra', limit: 10, periodMs: SECOND, burst: 1 };

  it('spaces requests evenly: one per interval, no burst', () => {
    expect(run(p, [0, 0, 50, 99, 100, 150, 200])).toEqual([true, false, false, false, true, false, true]);
  });

  it('says how long until the next slot', () => {
    const first = take(p, undefined, 1, 0);
    expect(take(p, first.state, 1, 30).decision).toMatchObject({ allowed: false, retryAfterMs: 70 });
  });

  it('allows `burst` back to back, then the steady rate', () => {
    const b3 = { ...p, burst: 3 };
    expect(run(b3, [0, 0, 0, 0, 100, 100])).toEqual([true, true, true, false, true, false]);
  });

  it('over a long run admits at most burst + rate x elapsed', () => {
    const b5 = { ...p, burst: 5 };
    const allowed = run(
      b5,
      Array.from({ length: 1000 }, (_, i) => i * 10),
    );
    expect(allowed.filter(Boolean).length).toBeLessThanOrEqual(5 + 100);
    expect(allowed.filter(Boolean).length).toBeGreaterThanOrEqual(100);
  });

  it('charges cost as several intervals', () => {
    const b4 = { ...p, burst: 4 };
    expect(run(b4, [0, 0, 0], 2)).toEqual([true, true, false]);
  });

  it('reports remaining requests after an admitted one', () => {
    const b3 = { ...p, burst: 3 };
    expect(take(b3, undefined, 1, 0).decision.remaining).toBe(2);
  });
});

describe('level: what a bucket holds (how the store compares memory with storage)', () => {
  const tb = { algorithm: 'token-bucket', limit: 10, periodMs: 1000, burst: 20 } as const;
  const gc = { algorithm: 'gcra', limit: 10, periodMs: 1000, burst: 5 } as const;

  it('a bucket never seen holds its burst; spending takes from it and refill brings it back, never past the burst', () => {
    for (const p of [tb, gc]) {
      expect(level(p, undefined, 0)).toBeCloseTo(p.burst, 9);
      const s = take(p, undefined, 3, 0).state;
      expect(level(p, s, 0)).toBeCloseTo(p.burst - 3, 9);
      expect(level(p, s, 100)).toBeCloseTo(p.burst - 2, 9); // 10 a second: one back after 100 ms
      expect(level(p, s, 60_000)).toBeCloseTo(p.burst, 9);
    }
  });

  it('agrees with take: a request of cost c is admitted exactly when the level is at least c', () => {
    for (const p of [tb, gc]) {
      let s = take(p, undefined, p.burst - 1, 0).state; // one left
      expect(level(p, s, 0)).toBeCloseTo(1, 9);
      expect(take(p, s, 2, 0).decision.allowed).toBe(false);
      s = take(p, s, 1, 0).state;
      expect(level(p, s, 0)).toBeCloseTo(0, 9);
      expect(take(p, s, 1, 0).decision.allowed).toBe(false);
      expect(take(p, s, 1, 100).decision.allowed).toBe(true);
    }
  });
});
