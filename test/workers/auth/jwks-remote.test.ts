import { env } from 'cloudflare:test';
import type { JWK, JWTPayload } from 'jose';
import { describe, expect, inject, it } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { issuerToken, planFrom, type TestAlg } from '../helpers.ts';
import { pub, type MeshError, get, bearer, expectAccepted, expectInvalid, sleep } from './fixture.ts';

const UP = inject('upstreamUrl');

// ---------------------------------------------------------------------------------------------
// Remote JWKS against the real HTTP JWKS server of the test setup.

type JwksState = { fetches: number; down: boolean; keys: number };

async function jwksEndpoint(name: string, set?: { keys?: JWK[]; maxAge?: number; down?: boolean }): Promise<JwksState> {
  const res = await fetch(`${UP}/jwks-control/${name}`, set ? { method: 'POST', body: JSON.stringify(set) } : {});
  return (await res.json()) as JwksState;
}

const fetchesOf = async (name: string) => (await jwksEndpoint(name)).fetches;

const unique = (what: string) => `${what}-${crypto.randomUUID().slice(0, 8)}`;

/** A gateway whose one issuer ("https://idp.test") takes its keys from the named endpoint. */
function remoteGateway(endpoint: string, cache: Record<string, string> = {}, extraIssuers = '') {
  const cacheYaml = Object.keys(cache).length ? `, cache: ${JSON.stringify(cache)}` : '';
  const mesh = planFrom(`
auth:
  issuers:
    idp: { issuer: https://idp.test, audiences: [meshwork], algorithms: [ES256, EdDSA, RS256], jwksUri: "${UP}/jwks/${endpoint}"${cacheYaml} }
${extraIssuers}
services: { echo: { backends: [{ binding: ECHO }] } }
routes: [{ name: api, service: echo, auth: {} }]
`);
  return { mesh, gateway: createGateway({ plan: mesh }) };
}

/** A fresh token (never in the verified-token cache) from https://idp.test. */
const idpToken = (alg: TestAlg = 'ES256', kid = `${alg}-1`, claims: JWTPayload = {}) =>
  issuerToken(alg, { iss: 'https://idp.test', jti: crypto.randomUUID(), ...claims }, { kid });

describe('remote JWKS', () => {
  it('one fetch for many requests, concurrent ones included', async () => {
    const ep = unique('many');
    await jwksEndpoint(ep, { keys: [pub('ES256'), pub('EdDSA')] });
    const { gateway: gw } = remoteGateway(ep);
    const first = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => get('/x', bearer(await idpToken(i % 2 ? 'ES256' : 'EdDSA')), env, gw)),
    );
    for (const r of first) await expectAccepted(r);
    for (let i = 0; i < 10; i++) await expectAccepted(await get('/x', bearer(await idpToken()), env, gw));
    expect(await fetchesOf(ep)).toBe(1);
  });

  it('fetches only the configured URI, never a jku/x5u named by the token', async () => {
    const ep = unique('configured');
    const evil = unique('evil');
    await jwksEndpoint(ep, { keys: [pub('ES256')] });
    await jwksEndpoint(evil, { keys: [pub('EdDSA', 'evil-1')] });
    const { gateway: gw } = remoteGateway(ep);
    const t = await issuerToken(
      'EdDSA',
      { iss: 'https://idp.test' },
      { kid: 'evil-1', jku: `${UP}/jwks/${evil}`, x5u: `${UP}/jwks/${evil}` },
    );
    await expectInvalid(await get('/x', bearer(t), env, gw));
    expect(await fetchesOf(evil)).toBe(0);
  });

  it('unknown kid: one refetch, then reject; another unknown kid within the cooldown fetches nothing', async () => {
    const ep = unique('kid');
    await jwksEndpoint(ep, { keys: [pub('ES256')] });
    const { gateway: gw } = remoteGateway(ep, { refetchCooldown: '1s' });
    await expectAccepted(await get('/x', bearer(await idpToken()), env, gw));
    expect(await fetchesOf(ep)).toBe(1);
    await sleep(1100);
    await expectInvalid(
      await get('/x', bearer(await idpToken('ES256', 'forged-1')), env, gw),
      'no key matches the token (kid)',
    );
    expect(await fetchesOf(ep)).toBe(2);
    await expectInvalid(
      await get('/x', bearer(await idpToken('ES256', 'forged-2')), env, gw),
      'no key matches the token (kid)',
    );
    await expectInvalid(
      await get('/x', bearer(await idpToken('ES256', 'forged-1')), env, gw),
      'no key matches the token (kid)',
    );
    expect(await fetchesOf(ep)).toBe(2);
    // Known keys keep working meanwhile, without fetching.
    await expectAccepted(await get('/x', bearer(await idpToken()), env, gw));
    expect(await fetchesOf(ep)).toBe(2);
  });

  it('key rotation: a new kid published in the JWKS is accepted without a new gateway', async () => {
    const ep = unique('rotate');
    await jwksEndpoint(ep, { keys: [pub('ES256', 'old')] });
    const { gateway: gw } = remoteGateway(ep, { refetchCooldown: '200ms' });
    await expectAccepted(await get('/x', bearer(await idpToken('ES256', 'old')), env, gw));
    await jwksEndpoint(ep, { keys: [pub('ES256', 'old'), pub('EdDSA', 'new')] });
    await sleep(250);
    const seen = await expectAccepted(
      await get('/x', bearer(await idpToken('EdDSA', 'new', { sub: 'rotated' })), env, gw),
    );
    expect(seen.headers['x-mesh-sub']).toBe('rotated');
    await expectAccepted(await get('/x', bearer(await idpToken('ES256', 'old')), env, gw));
    expect(await fetchesOf(ep)).toBe(2);
  });

  it('honours Cache-Control max-age (within minTtl..maxTtl): refetches after a short TTL, not before a long one', async () => {
    const short = unique('ttl-short');
    const long = unique('ttl-long');
    await jwksEndpoint(short, { keys: [pub('ES256')], maxAge: 1 });
    await jwksEndpoint(long, { keys: [pub('ES256')], maxAge: 3600 });
    const s = remoteGateway(short, { minTtl: '1s' }).gateway;
    const l = remoteGateway(long, { minTtl: '1s' }).gateway;
    await expectAccepted(await get('/x', bearer(await idpToken()), env, s));
    await expectAccepted(await get('/x', bearer(await idpToken()), env, l));
    await expectAccepted(await get('/x', bearer(await idpToken()), env, s));
    expect(await fetchesOf(short)).toBe(1);
    await sleep(1200);
    await expectAccepted(await get('/x', bearer(await idpToken()), env, s));
    await expectAccepted(await get('/x', bearer(await idpToken()), env, l));
    expect(await fetchesOf(short)).toBe(2);
    expect(await fetchesOf(long)).toBe(1);
  });

  it('endpoint down: cached keys keep working until expiry + staleFor, then 503 auth_unavailable; recovers when it is back', async () => {
    const ep = unique('down');
    await jwksEndpoint(ep, { keys: [pub('ES256')], maxAge: 1 });
    const { gateway: gw } = remoteGateway(ep, { minTtl: '1s', staleFor: '2s', refetchCooldown: '1s' });
    await expectAccepted(await get('/x', bearer(await idpToken()), env, gw));
    const fetchedBy = Date.now();
    await jwksEndpoint(ep, { down: true });
    await sleep(1300);
    // Expired, the endpoint fails: the last good keys still verify (stale window).
    await expectAccepted(await get('/x', bearer(await idpToken()), env, gw));
    expect(await fetchesOf(ep)).toBe(2);
    // Past expiry (1 s) + staleFor (2 s): no more trusting the old keys.
    await sleep(Math.max(0, fetchedBy + 3100 - Date.now()));
    const res = await get('/x', bearer(await idpToken()), env, gw);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeTruthy();
    const body = (await res.json()) as MeshError;
    expect(body.error.code).toBe('auth_unavailable');
    // Back up: the next attempt after the cooldown gets keys again.
    await jwksEndpoint(ep, { down: false });
    await sleep(1100);
    await expectAccepted(await get('/x', bearer(await idpToken()), env, gw));
  });

  it('an issuer whose endpoint is down never blocks another; its own tokens get 503', async () => {
    const bad = unique('bad');
    const good = unique('good');
    await jwksEndpoint(bad, { down: true });
    await jwksEndpoint(good, { keys: [pub('RS256')] });
    const { gateway: gw } = remoteGateway(
      bad,
      {},
      `    good: { issuer: https://good.test, audiences: [meshwork], algorithms: [RS256], jwksUri: "${UP}/jwks/${good}" }`,
    );
    const down = await get('/x', bearer(await idpToken()), env, gw);
    expect(down.status).toBe(503);
    expect(((await down.json()) as MeshError).error.code).toBe('auth_unavailable');
    const ok = await get(
      '/x',
      bearer(await issuerToken('RS256', { iss: 'https://good.test', sub: 'good-user' })),
      env,
      gw,
    );
    expect((await expectAccepted(ok)).headers['x-mesh-sub']).toBe('good-user');
    // A bad token for the failing issuer is still a 401 where no key is needed to tell.
    const [header] = (await idpToken()).split('.');
    await expectInvalid(await get('/x', bearer(`${header}.eA.eA`), env, gw), 'malformed token');
  });

  it('shares fetched keys across isolates through KV: a second gateway does not ask the IdP', async () => {
    const ep = unique('kv');
    await jwksEndpoint(ep, { keys: [pub('ES256')] });
    const first = remoteGateway(ep).gateway;
    const second = remoteGateway(ep).gateway;
    await expectAccepted(await get('/x', bearer(await idpToken()), env, first));
    expect(await fetchesOf(ep)).toBe(1);
    await expectAccepted(await get('/x', bearer(await idpToken()), env, second));
    expect(await fetchesOf(ep)).toBe(1);
    // Without the KV binding, the second isolate would have had to fetch.
    const third = remoteGateway(ep).gateway;
    const { MESH_KV: _kv, ...noKv } = env;
    await expectAccepted(await get('/x', bearer(await idpToken()), noKv, third));
    expect(await fetchesOf(ep)).toBe(2);
  });
});
