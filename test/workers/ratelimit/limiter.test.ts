import { env } from 'cloudflare:test';
import { generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { call, devToken, type Echo } from '../helpers.ts';
import {
  BASE,
  RUN,
  P,
  type Gateway,
  gatewayFor,
  get,
  statuses,
  items,
  expectLimited,
  countingBackend,
  bound,
} from './fixture.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const DEV_ISSUER = {
  dev: {
    issuer: 'https://dev.meshwork.local',
    audiences: ['meshwork'],
    algorithms: ['ES256'],
    jwks: { env: 'MESH_DEV_JWKS' },
  },
};

/** One route /limited to the echo fixture, with these policies (names already unique). */
function limitedGateway(
  rateLimits: Record<string, Record<string, unknown>>,
  routeExtra: Record<string, unknown> = {},
): Gateway {
  return gatewayFor({
    rateLimits,
    routes: [
      {
        name: 'limited',
        matches: [{ path: { prefix: '/limited' } }],
        service: 'echo',
        rateLimits: Object.keys(rateLimits),
        ...routeExtra,
      },
    ],
  });
}

const admitted = (s: number[]) => s.filter((x) => x === 200).length;

interface Tally {
  admitted: number;
  refused: number;
  other: number;
  elapsedMs: number;
}

/**
 * `clients` concurrent loops, each sending its next request as soon as the previous one is
 * answered, for `ms`; client i goes through gateways[i % gateways.length] (each gateway is a
 * separately compiled mesh with its own Limiter: an isolate of its own for lease mode).
 */
async function drive(
  gateways: Gateway[],
  clients: number,
  ms: number,
  headers: Record<string, string>,
): Promise<Tally> {
  // Any I/O first: workerd's clock only moves on I/O, so `start` is now, not the last I/O's time.
  await env.MESH_RATE_LIMITER.get(env.MESH_RATE_LIMITER.idFromName(`clock-${RUN}`)).peek();
  const start = Date.now();
  const tally: Tally = { admitted: 0, refused: 0, other: 0, elapsedMs: 0 };
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      while (Date.now() - start < ms) {
        const res = await get(gateways[i % gateways.length]!, '/limited', headers);
        await res.arrayBuffer();
        if (res.status === 200) tally.admitted++;
        else if (res.status === 429) tally.refused++;
        else tally.other++;
      }
    }),
  );
  tally.elapsedMs = Date.now() - start;
  return tally;
}

describe('exactness under concurrency (one key, many clients)', () => {
  // Observed (local workerd, five runs, 3,500-5,000 requests/s offered against 100/s): exact
  // mode admitted 318-319 of a bound of 320, lease mode 317-319 of 320. Largest over-admission
  // seen: none in either mode (at best 1 under the bound).
  const limit = 100;
  const burst = 20;

  it('exact mode: 40 clients for 3 s admit at most burst + limit × t / period (zero over-admission) and at least 90% of it', async () => {
    const gateway = limitedGateway({ [P('conc-exact')]: { limit, period: '1s', burst, key: ['header:x-api-key'] } });
    const t = await drive([gateway], 40, 3000, { 'x-api-key': 'conc-exact' });
    const max = bound(burst, limit, 1000, t.elapsedMs);
    console.log(`exact mode: admitted ${t.admitted} of bound ${max} (${t.refused} refused, ${t.elapsedMs} ms)`);
    expect(t.other).toBe(0);
    expect(t.refused).toBeGreaterThan(t.admitted); // the key really was overloaded
    expect(t.admitted).toBeLessThanOrEqual(max);
    expect(t.admitted).toBeGreaterThanOrEqual(Math.floor(0.9 * max));
  }, 20_000);

  it('exact mode, partitioned (8 keys in 2 objects, decisions for different keys sharing calls): every key at most its own bound, and at least 90% of it', async () => {
    const name = P('conc-part');
    const gateway = limitedGateway({
      [name]: { limit: 50, period: '1s', burst: 10, key: ['header:x-api-key'], partitions: 2 },
    });
    const keys = Array.from({ length: 8 }, (_, i) => `part-${i}`);
    const tallies = await Promise.all(keys.map((key) => drive([gateway], 5, 3000, { 'x-api-key': key })));
    tallies.forEach((t, i) => {
      const max = bound(10, 50, 1000, t.elapsedMs);
      console.log(`partitioned ${keys[i]}: admitted ${t.admitted} of bound ${max} (${t.refused} refused)`);
      expect(t.other).toBe(0);
      expect(t.refused).toBeGreaterThan(t.admitted);
      expect(t.admitted).toBeLessThanOrEqual(max);
      expect(t.admitted).toBeGreaterThanOrEqual(Math.floor(0.9 * max));
    });
    // The buckets really share objects: both partitions hold some of the keys, each key in one.
    // A bucket's key within its object is the policy and the header value's hash.
    const hex = async (text: string) =>
      [...new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))]
        .map((b) => b.toString(16).padStart(2, '0'))
        .join('')
        .slice(0, 32);
    const ids = await Promise.all(keys.map(async (k) => `${name}|${await hex(k)}`));
    const held = await Promise.all(
      [0, 1].map(async (p) => {
        const stub = env.MESH_RATE_LIMITER.get(env.MESH_RATE_LIMITER.idFromName(`gateway|${name}|#p${p}`));
        const found = await Promise.all(ids.map((id) => stub.peek(id)));
        return found.filter((b) => b !== undefined).length;
      }),
    );
    expect(held[0]! + held[1]!).toBe(8);
    expect(Math.min(...held)).toBeGreaterThan(0);
  }, 20_000);

  it('lease mode, two isolates with leases of 5: never above the same bound either, and at least 90% of it', async () => {
    const policy = {
      [P('conc-lease')]: { limit, period: '1s', burst, key: ['header:x-api-key'], mode: 'lease', lease: { size: 5 } },
    };
    const t = await drive([limitedGateway(policy), limitedGateway(policy)], 40, 3000, { 'x-api-key': 'conc-lease' });
    const max = bound(burst, limit, 1000, t.elapsedMs);
    console.log(`lease mode: admitted ${t.admitted} of bound ${max} (${t.refused} refused, ${t.elapsedMs} ms)`);
    expect(t.other).toBe(0);
    expect(t.refused).toBeGreaterThan(t.admitted);
    expect(t.admitted).toBeLessThanOrEqual(max);
    expect(t.admitted).toBeGreaterThanOrEqual(Math.floor(0.9 * max));
  }, 20_000);

  it('lease mode: units an isolate did not use go back without over-filling a bucket that refilled meanwhile', async () => {
    // Isolate A takes a lease of 10 and spends 1; the bucket refills while A holds 9; the lease
    // ends. Then B empties the bucket and A asks again, returning its 9. Counting from the moment
    // the bucket was full, the bound holds only if those 9 were never refilled as well
    // (before the fix: 29 admitted against a bound of 20).
    const policy = {
      [P('giveback')]: {
        limit: 20,
        period: '1s',
        burst: 20,
        key: ['header:x-api-key'],
        mode: 'lease',
        lease: { size: 10, ttl: '1s' },
      },
    };
    const [a, b] = [limitedGateway(policy), limitedGateway(policy)];
    const headers = { 'x-api-key': 'giveback' };
    expect((await get(a, '/limited', headers)).status).toBe(200);
    await sleep(1200);
    const start = Date.now();
    const byB = admitted(await statuses(b, 25, '/limited', headers));
    const byA = admitted(await statuses(a, 15, '/limited', headers));
    const max = bound(20, 20, 1000, Date.now() - start);
    console.log(`lease give-back: admitted ${byB} + ${byA} of bound ${max}`);
    expect(byB + byA).toBeLessThanOrEqual(max);
  }, 10_000);

  it('separate keys do not affect each other: one key exhausted under load, another still gets its full budget', async () => {
    const gateway = limitedGateway({ [P('sep')]: { limit: 5, period: '60s', key: ['header:x-api-key'] } });
    const hot = drive([gateway], 20, 500, { 'x-api-key': 'hot' });
    const cold = statuses(gateway, 6, '/limited', { 'x-api-key': 'cold' });
    const [h, c] = await Promise.all([hot, cold]);
    expect(h.admitted).toBe(5);
    expect(h.refused).toBeGreaterThan(50);
    expect(c).toEqual([200, 200, 200, 200, 200, 429]);
  }, 10_000);
});

describe('responses on limited routes', () => {
  it('429 carries the JSON error and Retry-After (seconds until a token is back); waiting that long admits the next request', async () => {
    const name = P('retry');
    const gateway = limitedGateway({ [name]: { limit: 1, period: '2s', key: ['ip'] } });
    const ip = { 'cf-connecting-ip': '198.51.100.7' };
    expect((await get(gateway, '/limited', ip)).status).toBe(200);

    const refused = await get(gateway, '/limited', { ...ip, 'x-request-id': 'rl-retry-1' });
    expect(refused.headers.get('retry-after')).toBe('2');
    expect((await expectLimited(refused, [name])).error.requestId).toBe('rl-retry-1');

    // Half way: half a token; still refused, now for 1 more second.
    await sleep(1000);
    const halfway = await get(gateway, '/limited', ip);
    expect(halfway.status).toBe(429);
    expect(halfway.headers.get('retry-after')).toBe('1');

    await sleep(Number(halfway.headers.get('retry-after')) * 1000);
    const again = await get(gateway, '/limited', ip);
    expect(again.status).toBe(200);
    expect(((await again.json()) as Echo).name).toBe('echo');
  }, 10_000);

  it('every response on a limited route carries RateLimit-Policy and RateLimit, remaining counting down; unlimited routes carry neither', async () => {
    const name = P('headers');
    const gateway = gatewayFor({
      rateLimits: { [name]: { limit: 3, period: '60s', key: ['header:x-api-key'] } },
      routes: [
        { name: 'limited', matches: [{ path: { prefix: '/limited' } }], service: 'echo', rateLimits: [name] },
        { name: 'free', matches: [{ path: { prefix: '/free' } }], service: 'echo' },
      ],
    });
    const key = { 'x-api-key': 'headers' };
    const seen: Array<{ status: number; r: number; t: number }> = [];
    // The third comes from the backend as a 503: limited, it still carries the fields.
    for (const path of ['/limited', '/limited', '/limited?status=503', '/limited']) {
      const res = await get(gateway, path, key);
      expect(items(res.headers.get('ratelimit-policy'), 'q;w')).toEqual({ [name]: { q: 3, w: 60 } });
      const { r, t } = items(res.headers.get('ratelimit'), 'r;t')[name]!;
      seen.push({ status: res.status, r: r!, t: t! });
      if (res.status !== 429) expect(res.headers.get('x-echo-name')).toBe('echo');
      await res.arrayBuffer();
    }
    // One token every 20 s: t is how long until the bucket is full again.
    expect(seen).toEqual([
      { status: 200, r: 2, t: 20 },
      { status: 200, r: 1, t: 40 },
      { status: 503, r: 0, t: 60 },
      { status: 429, r: 0, t: 60 },
    ]);

    const free = await get(gateway, '/free', key);
    expect(free.status).toBe(200);
    expect(free.headers.has('ratelimit-policy')).toBe(false);
    expect(free.headers.has('ratelimit')).toBe(false);
  });

  it('the backend sees nothing of a rejected request', async () => {
    const counter = countingBackend(`rl-${RUN}-backend`);
    const name = P('backend');
    const gateway = gatewayFor({
      services: { counted: counter.service },
      rateLimits: { [name]: { limit: 3, period: '60s', key: ['route'] } },
      routes: [
        { name: 'counted', matches: [{ path: { prefix: '/counted' } }], service: 'counted', rateLimits: [name] },
      ],
    });
    const results: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await call(gateway, `${BASE}/counted`, { method: 'POST', body: `request ${i}` });
      results.push(res.status);
      if (res.status === 200)
        expect(await res.json()).toEqual({ keys: [] }); // the backend's answer
      else await expectLimited(res, [name]);
    }
    expect(results).toEqual([200, 200, 200, 429, 429, 429, 429, 429]);
    expect(await counter.reached()).toBe(3);
  });
});

describe('algorithms and policy options through the gateway', () => {
  it('GCRA spaces requests: with burst 1 the next one back to back is refused for one interval, then passes; a token bucket of the same rate bursts', async () => {
    const smooth = P('gcra');
    const smoothBurst = P('gcra-burst');
    const bucket = P('bucket');
    const gateway = gatewayFor({
      rateLimits: {
        [smooth]: { algorithm: 'gcra', limit: 60, period: '60s', key: ['header:x-api-key'] }, // one a second
        [smoothBurst]: { algorithm: 'gcra', limit: 60, period: '60s', burst: 3, key: ['header:x-api-key'] },
        [bucket]: { limit: 60, period: '60s', key: ['header:x-api-key'] },
      },
      routes: [
        { name: 'smooth', matches: [{ path: { prefix: '/smooth' } }], service: 'echo', rateLimits: [smooth] },
        {
          name: 'smooth-burst',
          matches: [{ path: { prefix: '/burst3' } }],
          service: 'echo',
          rateLimits: [smoothBurst],
        },
        { name: 'bucket', matches: [{ path: { prefix: '/bucket' } }], service: 'echo', rateLimits: [bucket] },
      ],
    });
    const key = { 'x-api-key': 'spacing' };
    expect((await get(gateway, '/smooth', key)).status).toBe(200);
    const second = await get(gateway, '/smooth', key);
    await expectLimited(second, [smooth]);
    expect(second.headers.get('retry-after')).toBe('1');
    expect(items(second.headers.get('ratelimit'), 'r;t')[smooth]).toEqual({ r: 0, t: 1 });
    await sleep(1000);
    expect(await statuses(gateway, 2, '/smooth', key)).toEqual([200, 429]);

    expect(await statuses(gateway, 4, '/burst3', key)).toEqual([200, 200, 200, 429]);
    expect(await statuses(gateway, 5, '/bucket', key)).toEqual([200, 200, 200, 200, 200]);
  }, 10_000);

  it('cost > 1: each request takes that many tokens, and Retry-After counts the tokens it still needs', async () => {
    const name = P('cost');
    const gateway = limitedGateway({ [name]: { limit: 10, period: '10s', cost: 4, key: ['header:x-api-key'] } });
    const key = { 'x-api-key': 'cost' };
    const remaining: number[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await get(gateway, '/limited', key);
      expect(res.status).toBe(200);
      remaining.push(items(res.headers.get('ratelimit'), 'r;t')[name]!.r!);
    }
    expect(remaining).toEqual([6, 2]);
    const refused = await get(gateway, '/limited', key);
    await expectLimited(refused, [name]);
    // 2 tokens left, 4 needed, one token a second.
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(items(refused.headers.get('ratelimit'), 'r;t')[name]!.r).toBe(2);
  });

  it('several policies on a route: each reported in both fields; whichever refuses decides, with its own Retry-After', async () => {
    const perSecond = P('two-per-second');
    const perMinute = P('three-per-minute');
    const gateway = limitedGateway({
      [perSecond]: { limit: 2, period: '1s', key: ['header:x-api-key'] },
      [perMinute]: { limit: 3, period: '60s', key: ['header:x-api-key'] },
    });

    // Key 1: the per-second policy runs out first.
    const k1 = { 'x-api-key': 'multi-1' };
    for (const [r1, r2] of [
      [1, 2],
      [0, 1],
    ]) {
      const res = await get(gateway, '/limited', k1);
      expect(res.status).toBe(200);
      expect(items(res.headers.get('ratelimit-policy'), 'q;w')).toEqual({
        [perSecond]: { q: 2, w: 1 },
        [perMinute]: { q: 3, w: 60 },
      });
      expect(items(res.headers.get('ratelimit'), 'r;t')).toMatchObject({
        [perSecond]: { r: r1 },
        [perMinute]: { r: r2 },
      });
    }
    const first = await get(gateway, '/limited', k1);
    const body = await expectLimited(first, [perSecond]);
    expect(body.error.message).not.toContain(perMinute);
    expect(first.headers.get('retry-after')).toBe('1');
    expect(Object.keys(items(first.headers.get('ratelimit'), 'r;t'))).toEqual([perSecond, perMinute]);

    // Key 2: two now, one a second later (the per-second bucket is full again), then the
    // per-minute policy is the one out of tokens: one every 20 s.
    const k2 = { 'x-api-key': 'multi-2' };
    expect(await statuses(gateway, 2, '/limited', k2)).toEqual([200, 200]);
    await sleep(1000);
    expect((await get(gateway, '/limited', k2)).status).toBe(200);
    const second = await get(gateway, '/limited', k2);
    expect((await expectLimited(second, [perMinute])).error.message).not.toContain(perSecond);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(18);
    expect(Number(second.headers.get('retry-after'))).toBeLessThanOrEqual(20);
  }, 10_000);

  it('per-key overrides: tenant acme (multiplier 3) gets three times the budget of others', async () => {
    const name = P('tenants');
    const gateway = limitedGateway({
      [name]: { limit: 2, period: '60s', key: ['header:x-tenant'], overrides: { acme: { multiplier: 3 } } },
    });
    expect(await statuses(gateway, 7, '/limited', { 'x-tenant': 'acme' })).toEqual([200, 200, 200, 200, 200, 200, 429]);
    expect(await statuses(gateway, 3, '/limited', { 'x-tenant': 'globex' })).toEqual([200, 200, 429]);
    const res = await get(gateway, '/limited', { 'x-tenant': 'initech' });
    expect(items(res.headers.get('ratelimit'), 'r;t')[name]!.r).toBe(1);
  });
});

describe('bucket keys', () => {
  it('ip: a bucket per CF-Connecting-IP; requests without one share the no-value bucket, limited like any other', async () => {
    const gateway = limitedGateway({ [P('by-ip')]: { limit: 2, period: '60s' } }); // key defaults to [ip]
    expect(await statuses(gateway, 3, '/limited', { 'cf-connecting-ip': '192.0.2.1' })).toEqual([200, 200, 429]);
    expect(await statuses(gateway, 3, '/limited', { 'cf-connecting-ip': '2001:db8::1' })).toEqual([200, 200, 429]);
    // Two clients without an address: one shared budget, never unlimited.
    expect(await statuses(gateway, 1, '/limited')).toEqual([200]);
    expect(await statuses(gateway, 2, '/limited', { 'user-agent': 'another client' })).toEqual([200, 429]);
  });

  it('header: a bucket per x-api-key value; requests without the header share the no-value bucket, which a literal "%none" cannot reach', async () => {
    const gateway = limitedGateway({ [P('by-key')]: { limit: 2, period: '60s', key: ['header:x-api-key'] } });
    expect(await statuses(gateway, 3, '/limited', { 'x-api-key': 'key-1' })).toEqual([200, 200, 429]);
    expect(await statuses(gateway, 3, '/limited', { 'x-api-key': 'key-2' })).toEqual([200, 200, 429]);
    expect(await statuses(gateway, 2, '/limited', { 'x-api-key': '%none' })).toEqual([200, 200]);
    expect(await statuses(gateway, 3, '/limited', { 'cf-connecting-ip': '192.0.2.50' })).toEqual([200, 200, 429]);
    expect(await statuses(gateway, 1, '/limited', { 'cf-connecting-ip': '192.0.2.51' })).toEqual([429]);
  });

  it('route: a bucket per route, shared by every client of it', async () => {
    const name = P('by-route');
    const gateway = gatewayFor({
      rateLimits: { [name]: { limit: 2, period: '60s', key: ['route'] } },
      routes: [
        { name: 'one', matches: [{ path: { prefix: '/one' } }], service: 'echo', rateLimits: [name] },
        { name: 'two', matches: [{ path: { prefix: '/two' } }], service: 'echo', rateLimits: [name] },
      ],
    });
    expect(await statuses(gateway, 1, '/one', { 'cf-connecting-ip': '192.0.2.10' })).toEqual([200]);
    expect(await statuses(gateway, 2, '/one', { 'cf-connecting-ip': '192.0.2.11' })).toEqual([200, 429]);
    expect(await statuses(gateway, 3, '/two', { 'cf-connecting-ip': '192.0.2.10' })).toEqual([200, 200, 429]);
  });

  it('combination [ip, header:x-api-key]: a bucket per pair', async () => {
    const gateway = limitedGateway({ [P('by-pair')]: { limit: 1, period: '60s', key: ['ip', 'header:x-api-key'] } });
    const pair = (ip: string, key?: string) => ({ 'cf-connecting-ip': ip, ...(key ? { 'x-api-key': key } : {}) });
    expect(await statuses(gateway, 2, '/limited', pair('192.0.2.20', 'k1'))).toEqual([200, 429]);
    expect(await statuses(gateway, 1, '/limited', pair('192.0.2.20', 'k2'))).toEqual([200]);
    expect(await statuses(gateway, 1, '/limited', pair('192.0.2.21', 'k1'))).toEqual([200]);
    expect(await statuses(gateway, 2, '/limited', pair('192.0.2.20'))).toEqual([200, 429]);
    expect(await statuses(gateway, 1, '/limited', pair('192.0.2.21'))).toEqual([200]);
  });
});

describe('keys from JWT claims', () => {
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  function claimGateway(mode: 'required' | 'optional' | 'none'): Gateway {
    const name = P(`by-sub-${mode}`);
    return gatewayFor({
      auth: { issuers: DEV_ISSUER },
      rateLimits: { [name]: { limit: 2, period: '60s', key: ['claim:sub'] } },
      routes: [
        {
          name: 'limited',
          matches: [{ path: { prefix: '/limited' } }],
          service: 'echo',
          rateLimits: [name],
          ...(mode === 'none' ? {} : { auth: { mode } }),
        },
      ],
    });
  }

  /** A token that looks like the dev issuer's (same iss, aud, kid) but is signed with another key. */
  async function forgedToken(sub: string): Promise<string> {
    const { privateKey } = await generateKeyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: 'https://dev.meshwork.local', aud: 'meshwork', sub, iat: now, exp: now + 600 })
      .setProtectedHeader({ alg: 'ES256', kid: 'ES256-1', typ: 'JWT' })
      .sign(privateKey);
  }

  it('two users each get their own full budget', async () => {
    const gateway = claimGateway('required');
    const [alice, bob] = await Promise.all([devToken({ sub: `alice-${RUN}` }), devToken({ sub: `bob-${RUN}` })]);
    expect(await statuses(gateway, 3, '/limited', bearer(alice))).toEqual([200, 200, 429]);
    expect(await statuses(gateway, 3, '/limited', bearer(bob))).toEqual([200, 200, 429]);
  });

  it('a forged claim cannot pick a bucket: client-sent x-mesh-sub is ignored, an unverified token is refused before counting', async () => {
    const gateway = claimGateway('required');
    const carol = await devToken({ sub: `carol-${RUN}` });
    expect(await statuses(gateway, 3, '/limited', bearer(carol))).toEqual([200, 200, 429]);
    // Carol, out of tokens, claims to be someone else: still her bucket.
    expect(
      await statuses(gateway, 2, '/limited', {
        ...bearer(carol),
        'x-mesh-sub': `dave-${RUN}`,
        'x-mesh-user': `dave-${RUN}`,
      }),
    ).toEqual([429, 429]);
    // Tokens claiming dave's sub but not signed by the issuer: 401, and dave's budget untouched.
    expect(await statuses(gateway, 3, '/limited', bearer(await forgedToken(`dave-${RUN}`)))).toEqual([401, 401, 401]);
    expect(await statuses(gateway, 3, '/limited', bearer(await devToken({ sub: `dave-${RUN}` })))).toEqual([
      200, 200, 429,
    ]);
  });

  it('optional auth: anonymous requests share the no-value bucket; a verified user has their own; a bad token is refused', async () => {
    const gateway = claimGateway('optional');
    expect(await statuses(gateway, 3, '/limited', { 'cf-connecting-ip': '192.0.2.30' })).toEqual([200, 200, 429]);
    expect(await statuses(gateway, 1, '/limited', { 'cf-connecting-ip': '192.0.2.31' })).toEqual([429]);
    expect(await statuses(gateway, 1, '/limited', bearer(await forgedToken(`erin-${RUN}`)))).toEqual([401]);
    expect(await statuses(gateway, 3, '/limited', bearer(await devToken({ sub: `erin-${RUN}` })))).toEqual([
      200, 200, 429,
    ]);
  });

  it('on a route that verifies no token, claims in a token count for nothing: every request is in the no-value bucket', async () => {
    const gateway = claimGateway('none');
    const [frank, grace] = await Promise.all([devToken({ sub: `frank-${RUN}` }), devToken({ sub: `grace-${RUN}` })]);
    expect(await statuses(gateway, 2, '/limited', bearer(frank))).toEqual([200, 200]);
    expect(await statuses(gateway, 1, '/limited', bearer(grace))).toEqual([429]);
  });
});

describe("a request refused by one of a route's policies", () => {
  it("does not spend the others' units: they are given back", async () => {
    // route-wide: 3 per hour; per x-try value: 1 per hour. Five refusals by the second must not
    // use up the first, so two more fresh values are still admitted and only the third is not.
    const gateway = limitedGateway({
      [P('refund-route')]: { limit: 3, period: '1h', key: ['route'] },
      [P('refund-try')]: { limit: 1, period: '1h', key: ['header:x-try'] },
    });
    const status = async (tryValue: string) => {
      const res = await get(gateway, '/limited', { 'x-try': `${RUN}-${tryValue}` });
      await res.arrayBuffer();
      return res.status;
    };
    expect(await status('a')).toBe(200);
    for (let i = 0; i < 5; i++) expect(await status('a')).toBe(429);
    expect(await status('b')).toBe(200);
    expect(await status('c')).toBe(200);
    expect(await status('d')).toBe(429);
  });
});
