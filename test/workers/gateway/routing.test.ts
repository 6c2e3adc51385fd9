import { describe, expect, it } from 'vitest';
import { call } from '../helpers.ts';
import { gateway, BASE, echo } from './fixture.ts';

describe('weighted routing', () => {
  it('splits 1,000 requests within a few percent of 90/10', async () => {
    const counts: Record<string, number> = {};
    for (let batch = 0; batch < 10; batch++) {
      const results = await Promise.all(Array.from({ length: 100 }, () => call(gateway, `${BASE}/split`)));
      for (const r of results) {
        const name = r.headers.get('x-echo-name')!;
        counts[name] = (counts[name] ?? 0) + 1;
        await r.body?.cancel();
      }
    }
    expect((counts.echo ?? 0) + (counts['echo-v2'] ?? 0)).toBe(1000);
    // 4 points is over 4 standard deviations for n=1000, p=0.1.
    expect(Math.abs((counts['echo-v2'] ?? 0) / 1000 - 0.1)).toBeLessThan(0.04);
  });
});
