import { describe, expect, it } from 'vitest';
import { DEFAULT_OUTLIER, freshOutlier, isEjected, recordOutcome } from '../../../src/resilience/outlier.ts';
import { backoffMs, budgetRequest, budgetRetry, DEFAULT_BUDGET, freshBudget } from '../../../src/resilience/retry.ts';

describe('outlier detection (Envoy consecutive 5xx)', () => {
  const p = DEFAULT_OUTLIER;

  it('five failures in a row eject for 30 s; a success in between resets the count', () => {
    const s = freshOutlier(0);
    for (let i = 0; i < 4; i++) expect(recordOutcome(s, p, true, 1000, 0, 3)).toBe(false);
    recordOutcome(s, p, false, 1000, 0, 3);
    for (let i = 0; i < 4; i++) expect(recordOutcome(s, p, true, 1000, 0, 3)).toBe(false);
    expect(recordOutcome(s, p, true, 1000, 0, 3)).toBe(true);
    expect(isEjected(s, 1000 + 29_999)).toBe(true);
    expect(isEjected(s, 1000 + 30_000)).toBe(false);
  });

  it('each new ejection lasts base x ejections, at most 300 s; time healthy in rotation lowers the count', () => {
    const s = freshOutlier(0);
    let now = 0;
    const ejectOnce = () => {
      for (let i = 0; i < 5; i++) recordOutcome(s, p, true, now, 0, 3);
      return s.ejectedUntil - now;
    };
    expect(ejectOnce()).toBe(30_000);
    now = s.ejectedUntil;
    expect(ejectOnce()).toBe(60_000);
    for (let k = 3; k <= 12; k++) {
      now = s.ejectedUntil;
      ejectOnce();
    }
    expect(s.ejectedUntil - now).toBe(300_000);
    // 12 ejections; back in rotation and healthy for 5 intervals: down to 7.
    now = s.ejectedUntil + 5 * p.intervalMs;
    recordOutcome(s, p, false, now, 0, 3);
    expect(s.ejections).toBe(7);
  });

  it('never more than maxEjectionPercent of the set out (at least one may be), and never the last endpoint', () => {
    const s = freshOutlier(0);
    for (let i = 0; i < 5; i++) recordOutcome(s, p, true, 0, 1, 3); // one of three already out: 10% allows 1
    expect(isEjected(s, 1)).toBe(false);
    const t = freshOutlier(0);
    for (let i = 0; i < 5; i++) recordOutcome(t, { ...p, maxEjectionPercent: 100 }, true, 0, 1, 2);
    expect(isEjected(t, 1)).toBe(false); // the other of two is out: this one is the last
    const u = freshOutlier(0);
    for (let i = 0; i < 5; i++) recordOutcome(u, { ...p, maxEjectionPercent: 50 }, true, 0, 1, 4);
    expect(isEjected(u, 1)).toBe(true); // 50% of 4 = 2
  });
});

describe('retry back-off and budget', () => {
  it('back-off is full jitter under base x 2^(n-1), capped at 10x base', () => {
    expect(backoffMs(1, 25, 250, () => 0.999)).toBe(24);
    expect(backoffMs(3, 25, 250, () => 0.999)).toBe(99);
    expect(backoffMs(9, 25, 250, () => 0.999)).toBe(249);
    expect(backoffMs(2, 25, 250, () => 0)).toBe(0);
  });

  it('retries stop at 20% of requests plus 10 per second over 10 s (Linkerd defaults), and come back as the window moves', () => {
    const s = freshBudget(DEFAULT_BUDGET);
    const now = 50_000;
    for (let i = 0; i < 1000; i++) budgetRequest(s, now);
    let allowed = 0;
    while (budgetRetry(s, DEFAULT_BUDGET, now)) allowed++;
    expect(allowed).toBe(0.2 * 1000 + 10 * 10);
    // 10 s later the window holds none of that: only the floor.
    let later = 0;
    while (budgetRetry(s, DEFAULT_BUDGET, now + 10_000)) later++;
    expect(later).toBe(100);
  });

  it('a quiet service may still retry up to the floor', () => {
    const s = freshBudget(DEFAULT_BUDGET);
    let n = 0;
    while (budgetRetry(s, DEFAULT_BUDGET, 0)) n++;
    expect(n).toBe(100);
  });
});
