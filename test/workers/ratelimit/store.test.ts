import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Echo } from '../helpers.ts';
import { RUN, P, ECHO, gatewayFor, get, statuses, items, expectLimited, countingBackend } from './fixture.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

describe('durability without a write per decision (the real store, made to crash)', () => {
  // 100 an hour: refill during a test is negligible (under 0.1), so counts are exact.
  const params = { algorithm: 'token-bucket' as const, limit: 100, periodMs: 3_600_000, burst: 100 };
  const ask = (n: number, key?: string, p = params) =>
    Array.from({ length: n }, () => ({ params: p, cost: 1, ...(key !== undefined ? { key } : {}) }));
  const admitted = (results: Array<{ allowed: boolean }>) => results.filter((r) => r.allowed).length;
  const tokens = (state: { bucket: unknown } | undefined) => (state?.bucket as { tokens: number } | undefined)?.tokens;
  const object = (name: string) => env.CRASHABLE_LIMITER.get(env.CRASHABLE_LIMITER.idFromName(`${name}-${RUN}`));
  /** Crashes the object; the next call (on a new stub: a crashed one stays broken) starts it from storage. */
  const crash = async (name: string) => {
    await object(name)
      .crash()
      .catch(() => undefined);
    return object(name);
  };

  it('a busy bucket is written once it has spent more than a reserve, not per decision; restarted, it admits at most a reserve more than it had left', async () => {
    const stub = object('busy');
    // Reserve: 10% of the burst. Five decisions leave storage 5 behind (nothing stored = full).
    expect(admitted(await stub.takeMany(ask(5)))).toBe(5);
    expect(await stub.stored()).toBeUndefined();
    // The eleventh puts it 11 behind: written as it is (89).
    expect(admitted(await stub.takeMany(ask(6)))).toBe(6);
    expect(tokens(await stub.stored())).toBeCloseTo(89, 0);
    expect(admitted(await stub.takeMany(ask(3)))).toBe(3); // holds 86, storage says 89
    expect(tokens(await stub.stored())).toBeCloseTo(89, 0);

    // Restarted from storage: 89, three more than it had, within a reserve of 10. Never 100.
    const restarted = await crash('busy');
    expect(admitted(await restarted.takeMany(ask(100)))).toBe(89);
  });

  it('a key that comes now and then, its bucket refilling in between, is never written', async () => {
    const stub = object('occasional');
    // 10 back to back, refilling at 100 a second: full again 10 ms after each use.
    const fast = { algorithm: 'token-bucket' as const, limit: 100, periodMs: 1_000, burst: 10 };
    for (let i = 0; i < 5; i++) {
      expect(admitted(await stub.takeMany(ask(1, undefined, fast)))).toBe(1);
      await sleep(50);
    }
    expect(await stub.stored()).toBeUndefined();
    expect(admitted(await stub.takeMany(ask(20, undefined, fast)))).toBe(10); // still exact in memory
  });

  it('many buckets in one object (a partition): each key decided and stored on its own, in the order asked', async () => {
    const stub = object('partition');
    const small = { ...params, burst: 3, limit: 3 };
    const batch = ['a', 'b', 'c', 'a', 'a', 'b', 'a', 'c', 'c', 'c'].map((key) => ({ params: small, cost: 1, key }));
    const results = await stub.takeMany(batch);
    // a: three allowed, the fourth refused; b: both allowed; c: three allowed, the fourth refused.
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, true, true, true, false, true, true, false]);
    expect(results.map((r) => r.remaining)).toEqual([2, 2, 2, 1, 0, 1, 0, 1, 0, 0]);
    expect(await stub.peek('b')).toMatchObject({ tokens: expect.closeTo(1, 1) });
    expect(await stub.peek('d')).toBeUndefined();
    // Reserve 1 (10% of 3, at least the cost): each written at its second decision, holding 1.
    expect([tokens(await stub.stored('a')), tokens(await stub.stored('b')), tokens(await stub.stored('c'))]).toEqual([
      expect.closeTo(1, 1),
      expect.closeTo(1, 1),
      expect.closeTo(1, 1),
    ]);

    // Burst 20, reserve 2: d spends 5 (written at its third: 17), e spends 1 (never written).
    const mid = { ...params, burst: 20, limit: 20 };
    expect(admitted(await stub.takeMany(['d', 'e', 'd', 'd', 'd', 'd'].flatMap((k) => ask(1, k, mid))))).toBe(6);
    const restarted = await crash('partition');
    const again = await restarted.takeMany([
      ...['a', 'b', 'c'].flatMap((k) => ask(2, k, small)),
      ...ask(25, 'd', mid),
      ...ask(25, 'e', mid),
    ]);
    const allowedIn = (from: number, to: number) => admitted(again.slice(from, to));
    // a and c held 0, b 1: each finds 1, one more than it had at most.
    expect([allowedIn(0, 2), allowedIn(2, 4), allowedIn(4, 6)]).toEqual([1, 1, 1]);
    // d held 15 and finds 17; e held 19 and finds a full 20: never more than a reserve over.
    expect([allowedIn(6, 31), allowedIn(31, 56)]).toEqual([17, 20]);
  });
});
