import { describe, expect, it } from 'vitest';
import { p2cPick } from '../../../src/resilience/balance/p2c.ts';
import { buildRing, ringPick } from '../../../src/resilience/balance/ring.ts';
import { smoothPick, smoothState } from '../../../src/resilience/balance/smooth-wrr.ts';

const seq = (values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

describe('smooth weighted round robin (nginx)', () => {
  it('weights 5:1:1 give exactly a a b a c a a, cycle after cycle', () => {
    const s = smoothState([5, 1, 1]);
    const names = ['a', 'b', 'c'];
    const picks = Array.from({ length: 21 }, () => names[smoothPick(s)]).join(' ');
    expect(picks).toBe('a a b a c a a a a b a c a a a a b a c a a');
  });

  it('equal weights are plain round robin; weight 0 is never picked', () => {
    const s = smoothState([1, 0, 1, 1]);
    expect(Array.from({ length: 6 }, () => smoothPick(s))).toEqual([0, 2, 3, 0, 2, 3]);
  });

  it('an item left out (ejected) is skipped; the others keep their shares; nothing allowed is -1', () => {
    const s = smoothState([2, 1, 1]);
    const counts = [0, 0, 0];
    for (let i = 0; i < 300; i++) counts[smoothPick(s, (i) => i !== 1)]!++;
    expect(counts).toEqual([200, 0, 100]);
    expect(smoothPick(s, () => false)).toBe(-1);
  });
});

describe('least request, power of two choices', () => {
  it('of the two candidates drawn, the one with fewer requests in flight wins', () => {
    const inFlight = [5, 0, 9];
    // Draws (0, then 1 of the remaining [1, 2] -> 2): 0 vs 2 -> 0; (2, then 0 -> 0): 2 vs 0 -> 0
    expect(p2cPick([0, 1, 2], (i) => inFlight[i]!, seq([0.1, 0.9]))).toBe(0);
    expect(p2cPick([0, 1, 2], (i) => inFlight[i]!, seq([0.9, 0.1]))).toBe(0);
    // 0 vs 1 -> 1 (idle)
    expect(p2cPick([0, 1, 2], (i) => inFlight[i]!, seq([0.1, 0.1]))).toBe(1);
  });

  it('over many picks the least-loaded endpoint gets most requests, the busiest fewest, never two draws of one', () => {
    const inFlight = [0, 3, 6];
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[p2cPick([0, 1, 2], (j) => inFlight[j]!)]!++;
    // Each pair is drawn a third of the time; the lighter of the pair wins: 0 wins 2/3, 1 wins 1/3, 2 never.
    expect(counts[2]).toBe(0);
    expect(Math.abs(counts[0]! / 3000 - 2 / 3)).toBeLessThan(0.05);
    expect(p2cPick([], () => 0)).toBe(-1);
    expect(p2cPick([7], () => 0)).toBe(7);
  });
});

describe('consistent hashing (ring)', () => {
  const keys = Array.from({ length: 4000 }, (_, i) => `user-${i}`);
  const names = (n: number) => Array.from({ length: n }, (_, i) => `svc@v1/ep-${i}`);

  it('the same key keeps its endpoint; keys spread over all endpoints', () => {
    const ring = buildRing(names(4), [1, 1, 1, 1]);
    const counts = [0, 0, 0, 0];
    for (const k of keys) {
      const i = ringPick(ring, k);
      expect(ringPick(ring, k)).toBe(i);
      counts[i]!++;
    }
    for (const c of counts) expect(Math.abs(c / keys.length - 0.25)).toBeLessThan(0.06);
  });

  it('adding a fifth endpoint moves about 1/5 of the keys, all of them to the new one', () => {
    const before = buildRing(names(4), [1, 1, 1, 1]);
    const after = buildRing(names(5), [1, 1, 1, 1, 1]);
    let moved = 0;
    for (const k of keys) {
      const a = ringPick(before, k);
      const b = ringPick(after, k);
      if (a !== b) {
        moved++;
        expect(b).toBe(4);
      }
    }
    expect(Math.abs(moved / keys.length - 0.2)).toBeLessThan(0.05);
  });

  it("an endpoint left out sends its keys to its neighbours and gets them back; others' keys stay", () => {
    const ring = buildRing(names(3), [1, 1, 1]);
    for (const k of keys.slice(0, 500)) {
      const home = ringPick(ring, k);
      const without = ringPick(ring, k, (i) => i !== 1);
      if (home !== 1) expect(without).toBe(home);
      else expect(without).not.toBe(1);
    }
    expect(ringPick(buildRing([], []), 'x')).toBe(-1);
  });
});
