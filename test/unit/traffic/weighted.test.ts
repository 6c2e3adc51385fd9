import { describe, expect, it } from 'vitest';
import { WeightedPicker } from '../../../src/traffic/weighted.ts';

/** Deterministic "random" that walks evenly through [0, 1). */
function sweep(n: number): () => number {
  let i = 0;
  return () => (i++ % n) / n + 1 / (2 * n);
}

describe('weighted picker', () => {
  it('splits exactly by relative weight over a full sweep', () => {
    const p = new WeightedPicker([
      { item: 'a', weight: 90 },
      { item: 'b', weight: 10 },
    ]);
    const random = sweep(1000);
    const counts = { a: 0, b: 0 };
    for (let i = 0; i < 1000; i++) counts[p.pick(random) as 'a' | 'b']++;
    expect(counts).toEqual({ a: 900, b: 100 });
  });

  it('never picks weight 0, and picks nothing when all weights are 0', () => {
    const p = new WeightedPicker([
      { item: 'a', weight: 0 },
      { item: 'b', weight: 5 },
    ]);
    for (let i = 0; i < 100; i++) expect(p.pick()).toBe('b');
    expect(new WeightedPicker([{ item: 'a', weight: 0 }]).pick()).toBeUndefined();
    expect(new WeightedPicker([]).pick()).toBeUndefined();
  });

  it('weights are relative: 3:1 behaves as 75:25', () => {
    const p = new WeightedPicker([
      { item: 'a', weight: 3 },
      { item: 'b', weight: 1 },
    ]);
    const random = sweep(400);
    let a = 0;
    for (let i = 0; i < 400; i++) if (p.pick(random) === 'a') a++;
    expect(a).toBe(300);
  });

  it('with Math.random, 10,000 picks land within 2% of 90/10', () => {
    const p = new WeightedPicker([
      { item: 'a', weight: 90 },
      { item: 'b', weight: 10 },
    ]);
    let b = 0;
    for (let i = 0; i < 10_000; i++) if (p.pick() === 'b') b++;
    expect(b / 10_000).toBeGreaterThan(0.08);
    expect(b / 10_000).toBeLessThan(0.12);
  });
});
