import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Echo } from '../helpers.ts';
import { RUN, P, ECHO, gatewayFor, get, statuses, items, expectLimited, countingBackend } from './fixture.ts';

describe('store', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('when the store throws: onStoreFailure open admits, closed answers 503 with the JSON error and reaches nothing; both counted and logged', async () => {
    const counter = countingBackend(`rl-${RUN}-closed`);
    const open = P('fails-open');
    const closed = P('fails-closed');
    const gateway = gatewayFor({
      services: { ...ECHO, counted: counter.service },
      rateLimitStore: { binding: 'FAULTY_LIMITER' },
      rateLimits: {
        [open]: { limit: 1, period: '60s', onStoreFailure: 'open' },
        [closed]: { limit: 1, period: '60s', onStoreFailure: 'closed' },
      },
      routes: [
        { name: 'open', matches: [{ path: { prefix: '/open' } }], service: 'echo', rateLimits: [open] },
        { name: 'closed', matches: [{ path: { prefix: '/closed' } }], service: 'counted', rateLimits: [closed] },
      ],
    });
    const errors = vi.spyOn(console, 'error');
    // Counted per isolate, reported by /_mesh/health.
    const storeFailures = async () =>
      (
        (await (await get(gateway, '/_mesh/health')).json()) as {
          rateLimitStoreFailures: { open: number; closed: number };
        }
      ).rateLimitStoreFailures;
    const before = await storeFailures();

    // Limit 1, yet all three pass: nothing could be counted.
    for (let i = 0; i < 3; i++) {
      const res = await get(gateway, '/open');
      expect(res.status).toBe(200);
      expect(((await res.json()) as Echo).name).toBe('echo');
      expect(items(res.headers.get('ratelimit-policy'), 'q;w')).toEqual({ [open]: { q: 1, w: 60 } });
      expect(res.headers.has('ratelimit')).toBe(false); // nothing known about what remains
    }

    const res = await get(gateway, '/closed', { 'x-request-id': 'rl-closed-1' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toEqual({
      error: { code: 'rate_limit_unavailable', message: expect.stringContaining(closed), requestId: 'rl-closed-1' },
    });
    expect(await counter.reached()).toBe(0);

    expect(await storeFailures()).toEqual({ open: before.open + 3, closed: before.closed + 1 });
    const logged = errors.mock.calls
      .map(([line]) => String(line))
      .filter((line) => line.includes('"rate limit store failed"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged.filter((l) => l.policy === open && l.failOpen === true)).toHaveLength(3);
    expect(
      logged.filter((l) => l.policy === closed && l.failOpen === false && l.requestId === 'rl-closed-1'),
    ).toHaveLength(1);
  });

  it('state lives in the Durable Object, not the isolate: a second gateway (another compilation) sees the same bucket', async () => {
    const name = P('shared');
    const config = {
      rateLimits: { [name]: { limit: 3, period: '60s' } },
      routes: [{ name: 'limited', matches: [{ path: { prefix: '/limited' } }], service: 'echo', rateLimits: [name] }],
    };
    const [first, second] = [gatewayFor(config), gatewayFor(config)];
    const ip = { 'cf-connecting-ip': '203.0.113.9' };
    expect(await statuses(first, 3, '/limited', ip)).toEqual([200, 200, 200]);
    const res = await get(second, '/limited', ip);
    await expectLimited(res, [name]);
    expect(items(res.headers.get('ratelimit'), 'r;t')[name]!.r).toBe(0);
    // The bucket itself, in the object named after its enforcer (the gateway), policy and key.
    const stub = env.MESH_RATE_LIMITER.get(env.MESH_RATE_LIMITER.idFromName(`gateway|${name}|203.0.113.9`));
    const state = (await stub.peek()) as { tokens: number } | undefined;
    expect(state?.tokens).toBeLessThan(1);
  });
});
