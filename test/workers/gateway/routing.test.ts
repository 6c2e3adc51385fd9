import { describe, expect, it } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { call, planFrom } from '../helpers.ts';
import { gateway, BASE } from './fixture.ts';

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

describe('endpoints of one version', () => {
  const gw = createGateway({
    plan: planFrom(`
services:
  multi:
    backends:
      - { binding: ECHO, version: v1 }
      - { binding: ECHO_V2, version: v1 }
      - { binding: NOT_BOUND, version: v2 }
routes:
  - { name: pinned, matches: [{ path: { prefix: /v1 } }], service: multi, version: v1 }
  - { name: dead, matches: [{ path: { prefix: /v2 } }], service: multi, version: v2 }
`),
  });

  it('a version with two endpoints splits its traffic across both', async () => {
    const counts: Record<string, number> = {};
    const results = await Promise.all(Array.from({ length: 200 }, () => call(gw, `${BASE}/v1`)));
    for (const r of results) {
      counts[r.headers.get('x-echo-name')!] = (counts[r.headers.get('x-echo-name')!] ?? 0) + 1;
      await r.body?.cancel();
    }
    expect(Object.keys(counts).sort()).toEqual(['echo', 'echo-v2']);
    // 50/50 over 200: 30 points is far outside chance.
    expect(Math.abs(counts.echo! - 100)).toBeLessThan(30);
  });

  it('errors name the endpoint by its key', async () => {
    const res = await call(gw, `${BASE}/v2`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
      'backend multi@v2/NOT_BOUND is not bound in the gateway',
    );
  });
});
