import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { bundledConfig } from '../../../src/generated/bundle.ts';
import { compilePlan } from '../../../src/plan/compile.ts';
import { IdentityState } from '../../../src/identity/tokens.ts';
import { DEFAULT_IDENTITY, devToken, identityHeaders, memberEnv } from '../helpers.ts';
import { RUN, get, items, expectLimited, bound } from './fixture.ts';

describe('the example mesh (routes/mesh.yaml)', () => {
  const gateway = createGateway({ plan: compilePlan(bundledConfig) });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const perUser = 'per-user';
  const fromA = 'service-b-from-a';

  // Before the east-west tests: every /service-a request also calls service-b.
  it('/service-a allows each user 5 requests per 10 s: the 6th gets 429 with Retry-After and the fields', async () => {
    const token = bearer(await devToken({ sub: `example-${RUN}`, scope: 'read:a' }));
    const remaining: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await get(gateway, '/service-a', token);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ service_a: 'Hello from service-a', user: `example-${RUN}` });
      expect(items(res.headers.get('ratelimit-policy'), 'q;w')).toEqual({ [perUser]: { q: 5, w: 10 } });
      remaining.push(items(res.headers.get('ratelimit'), 'r;t')[perUser]!.r!);
    }
    expect(remaining).toEqual([4, 3, 2, 1, 0]);
    const sixth = await get(gateway, '/service-a', token);
    await expectLimited(sixth, [perUser]);
    expect(sixth.headers.get('retry-after')).toBe('2'); // one request every 2 s
    expect(items(sixth.headers.get('ratelimit'), 'r;t')[perUser]).toEqual({ r: 0, t: 10 });
    // Another user is not affected.
    const other = await get(
      gateway,
      '/service-a',
      bearer(await devToken({ sub: `example-other-${RUN}`, scope: 'read:a' })),
    );
    expect(other.status).toBe(200);
  });

  /** service-a calling service-b as the mesh does: its identity, and the gateway's assertion of `sub`. */
  async function asServiceA(sub: string): Promise<Record<string, string>> {
    const user = {
      issuer: 'local-dev',
      sub,
      scopes: ['read:a'],
      claims: { sub },
      exp: Math.floor(Date.now() / 1000) + 300,
    };
    const assertion = await new IdentityState(DEFAULT_IDENTITY).minter.userAssertion(
      user,
      { services: ['service-b'], key: 'service-b' },
      memberEnv('gateway'),
    );
    return { ...(await identityHeaders('service-a', 'service-b')), 'x-mesh-user': assertion };
  }

  it('east-west: service-b refuses service-a beyond 20/s for one user, and never another user because of it', async () => {
    // 40 calls at once for one user: at most the bucket's burst and refill pass.
    const busy = await asServiceA(`ew-busy-${RUN}`);
    const start = Date.now();
    const responses = await Promise.all(
      Array.from({ length: 40 }, () => env.SERVICE_B_V1.fetch('https://svc/service-b/whoami', { headers: busy })),
    );
    const elapsed = Date.now() - start;
    const ok = responses.filter((r) => r.status === 200);
    const refused = responses.filter((r) => r.status === 429);
    expect(ok.length + refused.length).toBe(40);
    expect(ok.length).toBeLessThanOrEqual(bound(20, 20, 1000, elapsed));
    expect(refused.length).toBeGreaterThan(0);
    for (const res of refused) {
      await expectLimited(res, [fromA]);
      expect(Number(res.headers.get('retry-after'))).toBe(1);
    }
    // The bucket is per caller and user: 12 other users at once each get their first call
    // through (one bucket for all would have been used up by the busy one).
    const others = await Promise.all(
      Array.from({ length: 12 }, async (_, i) =>
        env.SERVICE_B_V1.fetch('https://svc/service-b/whoami', { headers: await asServiceA(`ew-${RUN}-${i}`) }),
      ),
    );
    expect(others.map((r) => r.status)).toEqual(Array(12).fill(200));
  });

  it('east-west: service-b reports its limit to service-a, and calls from the gateway are not counted by it (callers: [service-a])', async () => {
    // Calls on behalf of no user share one bucket per caller.
    const identity = await identityHeaders('service-a', 'service-b');
    const direct = Array.from({ length: 30 }, () =>
      env.SERVICE_B_V1.fetch('https://service-b.internal/service-b/whoami', { headers: identity }),
    );
    const viaGateway = Array.from({ length: 30 }, () => get(gateway, '/service-b/whoami'));
    const [fromServiceA, fromGateway] = await Promise.all([Promise.all(direct), Promise.all(viaGateway)]);

    for (const res of fromServiceA) {
      expect([200, 429]).toContain(res.status);
      expect(items(res.headers.get('ratelimit-policy'), 'q;w')).toEqual({ [fromA]: { q: 20, w: 1 } });
      expect(res.headers.get('ratelimit')).toMatch(new RegExp(`^"${fromA}";r=\\d+;t=\\d+$`));
      await res.arrayBuffer();
    }
    expect(fromServiceA.filter((r) => r.status === 429).length).toBeGreaterThan(0);

    for (const res of fromGateway) {
      expect(res.status).toBe(200);
      expect(res.headers.has('ratelimit-policy')).toBe(false);
      expect(await res.json()).toMatchObject({ service: 'service-b', caller: 'gateway' });
    }
  });
});
