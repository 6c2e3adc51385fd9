/**
 * Where the client's address comes from (network.clientIp), and keys with a fallback
 * ("claim:sub ?? ip"): the address a client cannot choose, and no shared bucket for everyone
 * who lacks a value.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { call, devToken, identityHeaders } from '../helpers.ts';
import { BASE, P, expectLimited, gatewayFor, type Gateway } from './fixture.ts';

const ONE_PER_MINUTE = { limit: 1, period: '60s' };

function ipLimited(network: Record<string, unknown> | undefined, name: string): Gateway {
  return gatewayFor({
    ...(network ? { network: { allowLoopbackBackends: true, ...network } } : {}),
    rateLimits: { [name]: { ...ONE_PER_MINUTE, key: ['ip'] } },
    routes: [{ name: 'limited', matches: [{ path: { prefix: '/limited' } }], service: 'echo', rateLimits: [name] }],
  });
}

const statusOf = async (gw: Gateway, headers: Record<string, string>, bindings: object = env) =>
  (await call(gw, `${BASE}/limited`, { headers }, bindings)).status;

describe('the client address', () => {
  it('by default CF-Connecting-IP: a bucket per address', async () => {
    const gw = ipLimited(undefined, P('ip-default'));
    expect(await statusOf(gw, { 'cf-connecting-ip': '198.51.100.1' })).toBe(200);
    expect(await statusOf(gw, { 'cf-connecting-ip': '198.51.100.1' })).toBe(429);
    expect(await statusOf(gw, { 'cf-connecting-ip': '198.51.100.2' })).toBe(200);
  });

  it('under npm run dev (MESHWORK_DEV) a client-sent CF-Connecting-IP is not believed: it cannot pick its bucket', async () => {
    const gw = ipLimited(undefined, P('ip-dev'));
    const dev = { ...env, MESHWORK_DEV: '1' };
    expect(await statusOf(gw, { 'cf-connecting-ip': '198.51.100.3' }, dev)).toBe(200);
    expect(await statusOf(gw, { 'cf-connecting-ip': '198.51.100.4' }, dev)).toBe(429);
  });

  it('from a header a trusted proxy sets, or the nth X-Forwarded-For entry from the right', async () => {
    const byHeader = ipLimited({ clientIp: { header: 'x-real-ip' } }, P('ip-header'));
    expect(await statusOf(byHeader, { 'x-real-ip': '198.51.100.5', 'cf-connecting-ip': '1.1.1.1' })).toBe(200);
    expect(await statusOf(byHeader, { 'x-real-ip': '198.51.100.5', 'cf-connecting-ip': '2.2.2.2' })).toBe(429);
    expect(await statusOf(byHeader, { 'x-real-ip': '198.51.100.6' })).toBe(200);

    const byXff = ipLimited({ clientIp: { forwardedFor: 1 } }, P('ip-xff'));
    // The client may put anything first; the proxy appended the last entry.
    expect(await statusOf(byXff, { 'x-forwarded-for': '6.6.6.6, 198.51.100.7' })).toBe(200);
    expect(await statusOf(byXff, { 'x-forwarded-for': '7.7.7.7, 198.51.100.7' })).toBe(429);
  });

  it('IPv4-mapped IPv6 addresses are their IPv4 client, not one /64 for all', async () => {
    const gw = ipLimited(undefined, P('ip-mapped'));
    expect(await statusOf(gw, { 'cf-connecting-ip': '::ffff:198.51.100.8' })).toBe(200);
    expect(await statusOf(gw, { 'cf-connecting-ip': '198.51.100.8' })).toBe(429);
    expect(await statusOf(gw, { 'cf-connecting-ip': '::ffff:198.51.100.9' })).toBe(200);
  });

  it("a service's ip key is the address the gateway vouched for, never one another caller sends", async () => {
    // service-b's east-west policy has no ip key in the example; its wrapper takes the address
    // from x-mesh-client-ip only when the gateway called, which only the gateway can set.
    const asServiceA = await identityHeaders('service-a', 'service-b');
    const res = await env.SERVICE_B_V1.fetch('https://svc/service-b/whoami', {
      headers: { ...asServiceA, 'x-mesh-client-ip': '203.0.113.99', 'cf-connecting-ip': '203.0.113.98' },
    });
    expect(res.status).toBe(200);
    await res.body?.cancel();
  });
});

describe('keys with a fallback', () => {
  it('claim:sub ?? ip on an optional-auth route: each anonymous client has its own bucket, each user theirs', async () => {
    const name = P('sub-or-ip');
    const gw = gatewayFor({
      auth: {
        issuers: {
          'local-dev': {
            issuer: 'https://dev.meshwork.local',
            audiences: ['meshwork'],
            algorithms: ['ES256'],
            jwks: { env: 'MESH_DEV_JWKS' },
          },
        },
      },
      rateLimits: { [name]: { ...ONE_PER_MINUTE, key: ['claim:sub ?? ip'] } },
      routes: [
        {
          name: 'limited',
          matches: [{ path: { prefix: '/limited' } }],
          service: 'echo',
          auth: { mode: 'optional' },
          rateLimits: [name],
        },
      ],
    });
    // One anonymous client used up its budget...
    expect(await statusOf(gw, { 'cf-connecting-ip': '198.51.100.20' })).toBe(200);
    await expectLimited(await call(gw, `${BASE}/limited`, { headers: { 'cf-connecting-ip': '198.51.100.20' } }), [
      name,
    ]);
    // ...which is not every anonymous client's.
    expect(await statusOf(gw, { 'cf-connecting-ip': '198.51.100.21' })).toBe(200);
    // A user is counted by sub, wherever they come from, apart from an address that happens to equal it.
    const token = { authorization: `Bearer ${await devToken({ sub: '198.51.100.21' })}` };
    expect(await statusOf(gw, { ...token, 'cf-connecting-ip': '198.51.100.22' })).toBe(200);
    expect(await statusOf(gw, { ...token, 'cf-connecting-ip': '198.51.100.23' })).toBe(429);
  });
});
