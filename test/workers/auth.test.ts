/**
 * End-user JWT authentication at the gateway, inside workerd: every accepted algorithm, tokens
 * from other implementations, every way a token must be refused, where tokens come from, what
 * reaches the backend, remote JWKS handling against a real HTTP JWKS server, and the
 * verified-token cache.
 */
import { env } from 'cloudflare:test';
import { base64url, decodeJwt, exportSPKI, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { describe, expect, inject, it } from 'vitest';
import { TokenVerifier } from '../../src/auth/verify.ts';
import { createGateway } from '../../src/gateway/app.ts';
import { bundleFrom, call, issuerToken, meshFrom, type Echo, type TestAlg } from './helpers.ts';

const BASE = 'https://gw.example.com';
const UP = inject('upstreamUrl');
const issuerKeys = inject('issuerKeys');
const pub = (alg: TestAlg, kid = `${alg}-1`): JWK => ({ ...issuerKeys[alg].publicJwk, kid });
const inline = (...keys: JWK[]) => JSON.stringify({ keys });
const ISS: Record<TestAlg, string> = {
  RS256: 'https://rsa.test',
  PS256: 'https://pss.test',
  ES256: 'https://ec.test',
  EdDSA: 'https://ed.test',
};
const SECRET = 'a shared secret of at least 32 bytes!';

const YAML = `
auth:
  issuers:
    rsa: { issuer: "${ISS.RS256}", audiences: [meshwork], algorithms: [RS256], jwks: ${inline(pub('RS256'))} }
    pss: { issuer: "${ISS.PS256}", audiences: [meshwork], algorithms: [PS256], jwks: ${inline(pub('PS256'))} }
    ec: { issuer: "${ISS.ES256}", audiences: [meshwork, other-api], algorithms: [ES256], jwks: ${inline(pub('ES256'))} }
    ed: { issuer: "${ISS.EdDSA}", audiences: [meshwork], algorithms: [EdDSA], jwks: ${inline(pub('EdDSA'))} }
    foreign: { issuer: https://other-impl.test, audiences: [meshwork], algorithms: [RS256, ES256, EdDSA], jwks: { env: FOREIGN_JWKS } }
    typed: { issuer: https://typed.test, audiences: [meshwork], algorithms: [ES256], typ: at+jwt, jwks: ${inline(pub('ES256'))} }
    shared: { issuer: https://hs.test, audiences: [meshwork], algorithms: [HS256], secret: { env: HS_SECRET } }
  claimHeaders: { sub: x-mesh-sub, scopes: x-mesh-scopes, tenant: x-tenant }
services:
  echo:
    backends: [{ binding: ECHO }]
routes:
  - { name: open, matches: [{ path: { prefix: /open } }], service: echo }
  - { name: api, matches: [{ path: { prefix: /api } }], service: echo, auth: {} }
  - { name: scoped, matches: [{ path: { prefix: /scoped } }], service: echo, auth: { scopes: [read:a, write:a] } }
  - name: tenant
    matches: [{ path: { prefix: /tenant } }]
    service: echo
    auth: { claims: { tenant: [acme, globex], groups: admins } }
  - { name: cookie, matches: [{ path: { prefix: /cookie } }], service: echo, auth: { token: { cookie: session }, forwardToken: false } }
  - { name: header, matches: [{ path: { prefix: /header } }], service: echo, auth: { token: { header: x-api-token } } }
  - { name: optional, matches: [{ path: { prefix: /maybe } }], service: echo, auth: { mode: optional } }
  - { name: nofwd, matches: [{ path: { prefix: /nofwd } }], service: echo, auth: { forwardToken: false } }
  - { name: only-ec, matches: [{ path: { prefix: /only-ec } }], service: echo, auth: { issuers: [ec] } }
  - { name: typed, matches: [{ path: { prefix: /typed } }], service: echo, auth: { issuers: [typed] } }
`;

const ENV = { ...env, FOREIGN_JWKS: inject('foreignJwks'), HS_SECRET: SECRET };
const gateway = createGateway({ mesh: meshFrom(YAML) });

type MeshError = { error: { code: string; message: string; requestId: string } };

async function get(
  path: string,
  headers: Record<string, string> = {},
  bindings: object = ENV,
  gw = gateway,
): Promise<Response> {
  return call(gw, `${BASE}${path}`, { headers }, bindings);
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A token from the issuer configured for `alg` in YAML above. */
const token = (alg: TestAlg, claims: JWTPayload = {}, header = {}) =>
  issuerToken(alg, { iss: ISS[alg], ...claims }, header);

async function expectAccepted(res: Response): Promise<Echo> {
  if (res.status !== 200) throw new Error(`expected 200, got ${res.status}: ${await res.text()}`);
  const seen = (await res.json()) as Echo;
  expect(seen.name).toBe('echo');
  return seen;
}

/** A 401 invalid_token per RFC 6750, with the fixed description the gateway gives. */
async function expectInvalid(res: Response, description?: string | RegExp): Promise<void> {
  expect(res.status).toBe(401);
  const www = res.headers.get('www-authenticate')!;
  expect(www).toMatch(/^Bearer realm="meshwork", error="invalid_token", error_description="[^"]*"$/);
  const body = (await res.json()) as MeshError;
  expect(body.error.code).toBe('invalid_token');
  if (typeof description === 'string') expect(body.error.message).toBe(description);
  else if (description) expect(body.error.message).toMatch(description);
}

const b64json = (v: unknown) => base64url.encode(JSON.stringify(v));

describe('valid tokens', () => {
  it.each(['RS256', 'PS256', 'ES256', 'EdDSA'] as const)(
    'accepts a %s token (jose) and forwards the verified claims',
    async (alg) => {
      const seen = await expectAccepted(
        await get('/api/x', bearer(await token(alg, { sub: `user-${alg}`, scope: 'read:a write:a' }))),
      );
      expect(seen.headers['x-mesh-sub']).toBe(`user-${alg}`);
      expect(seen.headers['x-mesh-scopes']).toBe('read:a write:a');
      // forwardToken defaults to true: the backend gets the user's token as sent.
      expect(seen.headers.authorization).toMatch(/^Bearer ey/);
    },
  );

  it.each([
    ['jsonwebtoken', 'RS256', 'jsonwebtokenRS256', 'jsonwebtoken-rs256'],
    ['jsonwebtoken', 'ES256', 'jsonwebtokenES256', 'jsonwebtoken-es256'],
    ['openssl', 'EdDSA', 'opensslEdDSA', 'openssl-eddsa'],
  ] as const)('accepts a %s %s token, verified against a JWKS from env', async (_impl, _alg, name, sub) => {
    const seen = await expectAccepted(await get('/api', bearer(inject('foreignTokens')[name])));
    expect(seen.headers['x-mesh-sub']).toBe(sub);
    expect(seen.headers['x-mesh-scopes']).toBe('read:a');
  });

  it('accepts scope as an array (scp) and as a space-separated string together', async () => {
    const seen = await expectAccepted(
      await get('/scoped', bearer(await token('ES256', { scope: 'read:a', scp: ['write:a', 'other'] }))),
    );
    expect(seen.headers['x-mesh-scopes']?.split(' ').sort()).toEqual(['other', 'read:a', 'write:a']);
  });

  it("accepts any of the issuer's audiences, also when aud is an array", async () => {
    await expectAccepted(await get('/api', bearer(await token('ES256', { aud: 'other-api' }))));
    await expectAccepted(await get('/api', bearer(await token('ES256', { aud: ['unrelated', 'meshwork'] }))));
  });

  it('tolerates clock skew (default 30 s) on exp and nbf', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectAccepted(await get('/api', bearer(await token('ES256', { exp: now - 10 }))));
    await expectAccepted(await get('/api', bearer(await token('ES256', { nbf: now + 10 }))));
  });
});

describe('refused tokens', () => {
  it('missing: 401 with a bare Bearer challenge (no error code)', async () => {
    for (const headers of [{}, { authorization: 'Basic dXNlcjpwdw==' }] as Array<Record<string, string>>) {
      const res = await get('/api', headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="meshwork"');
      expect(((await res.json()) as MeshError).error.code).toBe('unauthorized');
    }
  });

  it.each([
    ['bad base64 in the header', () => `a+b/c==.${b64json({ iss: ISS.ES256 })}.sig`],
    ['bad characters', () => 'abc*def.ghi.jkl'],
    ['an empty bearer', () => ''],
    ['two segments', () => `${b64json({ alg: 'ES256' })}.${b64json({ iss: ISS.ES256 })}`],
    ['four segments', () => `${b64json({ alg: 'ES256' })}.${b64json({ iss: ISS.ES256 })}.c2ln.c2ln`],
    ['five segments (a JWE)', () => 'eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d'],
    ['a non-JSON header', () => `${base64url.encode('not json')}.${b64json({ iss: ISS.ES256 })}.c2ln`],
    ['a non-JSON payload', () => `${b64json({ alg: 'ES256', kid: 'ES256-1' })}.${base64url.encode('hello')}.c2ln`],
  ])('malformed, %s: 401 invalid_token', async (_what, make) => {
    await expectInvalid(await get('/api', { authorization: `Bearer ${make()}` }), 'malformed token');
  });

  it('alg "none": 401, never accepted', async () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = b64json({ iss: ISS.RS256, aud: 'meshwork', sub: 'mallory', exp: now + 600 });
    for (const alg of ['none', 'None', 'NONE']) {
      await expectInvalid(
        await get('/api', bearer(`${b64json({ alg, typ: 'JWT' })}.${payload}.`)),
        'algorithm not allowed',
      );
    }
  });

  it('HS256 signed with the RSA public key as HMAC secret (algorithm confusion): 401', async () => {
    const rsaPublic = (await importJWK(pub('RS256'), 'RS256', { extractable: true })) as CryptoKey;
    const enc = new TextEncoder();
    for (const secret of [await exportSPKI(rsaPublic), JSON.stringify(pub('RS256'))]) {
      const now = Math.floor(Date.now() / 1000);
      const forged = await new SignJWT({ iss: ISS.RS256, aud: 'meshwork', sub: 'mallory', exp: now + 600 })
        .setProtectedHeader({ alg: 'HS256', kid: 'RS256-1' })
        .sign(enc.encode(secret));
      await expectInvalid(await get('/api', bearer(forged)), 'algorithm not allowed');
    }
  });

  it("an algorithm outside the issuer's allowlist, even with a valid signature: 401", async () => {
    // Signed by the PS256 key but claiming the RS256-only issuer.
    await expectInvalid(
      await get('/api', bearer(await token('PS256', { iss: ISS.RS256 }, { kid: 'RS256-1' }))),
      'algorithm not allowed',
    );
  });

  it('wrong signature: 401', async () => {
    const good = await token('ES256');
    const [h, p, s] = good.split('.') as [string, string, string];
    const flipped = `${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    await expectInvalid(await get('/api', bearer(flipped)), 'signature invalid');
    // Claims changed after signing: same signature, another payload.
    const tampered = `${h}.${b64json({ ...decodeJwt(good), sub: 'admin' })}.${s}`;
    await expectInvalid(await get('/api', bearer(tampered)), 'signature invalid');
    // Signed by another key of the right type under the issuer's kid.
    const other = await generateKeyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    const impostor = await new SignJWT({ iss: ISS.ES256, aud: 'meshwork', sub: 'mallory', exp: now + 600 })
      .setProtectedHeader({ alg: 'ES256', kid: 'ES256-1' })
      .sign(other.privateKey);
    await expectInvalid(await get('/api', bearer(impostor)), 'signature invalid');
  });

  it('expired (beyond the clock skew): 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectInvalid(
      await get('/api', bearer(await token('ES256', { iat: now - 3600, exp: now - 60 }))),
      'token expired',
    );
  });

  it('no exp at all: 401', async () => {
    await expectInvalid(await get('/api', bearer(await token('ES256', { exp: undefined }))), 'token has no expiry');
  });

  it('not yet valid (nbf beyond the clock skew): 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectInvalid(await get('/api', bearer(await token('ES256', { nbf: now + 120 }))), 'token not yet valid');
  });

  it('issued in the future (iat beyond the clock skew): 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectInvalid(
      await get('/api', bearer(await token('ES256', { iat: now + 120, exp: now + 720 }))),
      'token issued in the future',
    );
  });

  it('wrong iss: unknown issuer, missing iss, or an issuer the route does not accept: 401', async () => {
    await expectInvalid(
      await get('/api', bearer(await token('ES256', { iss: 'https://evil.test' }))),
      'issuer not accepted',
    );
    await expectInvalid(await get('/api', bearer(await token('ES256', { iss: undefined }))), 'issuer not accepted');
    // Valid for issuer "rsa", but /only-ec accepts issuer "ec" only.
    const rsa = await token('RS256');
    await expectAccepted(await get('/api', bearer(rsa)));
    await expectInvalid(await get('/only-ec', bearer(rsa)), 'issuer not accepted');
    await expectAccepted(await get('/only-ec', bearer(await token('ES256'))));
  });

  it('wrong aud, or none: 401', async () => {
    await expectInvalid(
      await get('/api', bearer(await token('ES256', { aud: 'another-api' }))),
      'audience not accepted',
    );
    await expectInvalid(await get('/api', bearer(await token('ES256', { aud: undefined }))), 'audience not accepted');
  });

  it('typ, when the issuer requires one', async () => {
    await expectInvalid(
      await get('/typed', bearer(await issuerToken('ES256', { iss: 'https://typed.test' }, { typ: 'JWT' }))),
    );
    await expectInvalid(
      await get('/typed', bearer(await issuerToken('ES256', { iss: 'https://typed.test' }, { typ: undefined }))),
    );
    await expectAccepted(
      await get('/typed', bearer(await issuerToken('ES256', { iss: 'https://typed.test' }, { typ: 'at+jwt' }))),
    );
    await expectAccepted(
      await get(
        '/typed',
        bearer(await issuerToken('ES256', { iss: 'https://typed.test' }, { typ: 'application/at+jwt' })),
      ),
    );
  });

  it('a crit header parameter the gateway does not understand: 401 (RFC 7515 4.1.11)', async () => {
    const key = await importJWK(issuerKeys.ES256.privateJwk, 'ES256');
    const now = Math.floor(Date.now() / 1000);
    const critical = await new SignJWT({ iss: ISS.ES256, aud: 'meshwork', sub: 'alice', exp: now + 600 })
      .setProtectedHeader({
        alg: 'ES256',
        kid: 'ES256-1',
        crit: ['https://example.com/must-understand'],
        'https://example.com/must-understand': true,
      })
      .sign(key, { crit: { 'https://example.com/must-understand': true } });
    await expectInvalid(await get('/api', bearer(critical)));
  });

  it('missing scope: 403 insufficient_scope, naming the required scopes', async () => {
    const res = await get('/scoped', bearer(await token('ES256', { scope: 'read:a' })));
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toBe(
      'Bearer realm="meshwork", error="insufficient_scope", scope="read:a write:a"',
    );
    const body = (await res.json()) as MeshError;
    expect(body.error.code).toBe('insufficient_scope');
    expect(body.error.message).toContain('write:a');
    expect(body.error.message).not.toContain('read:a');
    // A scope that merely starts like the required one is not it.
    expect((await get('/scoped', bearer(await token('ES256', { scope: 'read:abc write:ab' })))).status).toBe(403);
    await expectAccepted(await get('/scoped', bearer(await token('ES256', { scope: 'write:a read:a' }))));
  });

  it('claim requirements: one of a list, an array claim containing the value', async () => {
    await expectAccepted(
      await get('/tenant', bearer(await token('ES256', { tenant: 'globex', groups: ['users', 'admins'] }))),
    );
    await expectAccepted(await get('/tenant', bearer(await token('ES256', { tenant: 'acme', groups: 'admins' }))));
    for (const claims of [
      { tenant: 'initech', groups: ['admins'] },
      { tenant: 'acme', groups: ['users'] },
      { groups: ['admins'] },
      { tenant: ['initech'], groups: 'admins' },
    ]) {
      const res = await get('/tenant', bearer(await token('ES256', claims)));
      expect(res.status).toBe(403);
      expect(((await res.json()) as MeshError).error.code).toBe('forbidden');
    }
  });

  it('never echoes token contents in the error', async () => {
    const res = await get(
      '/api',
      bearer(await token('ES256', { iss: 'https://evil.test/<script>', sub: 'secret-sub' })),
    );
    const text = await res.clone().text();
    expect(text).not.toContain('secret-sub');
    expect(text).not.toContain('evil');
    expect(res.headers.get('www-authenticate')).not.toContain('evil');
  });
});

describe('where the token comes from', () => {
  it('a named cookie (and forwardToken: false removes just that cookie)', async () => {
    const t = await token('EdDSA', { sub: 'cookie-user' });
    const seen = await expectAccepted(await get('/cookie', { cookie: `theme=dark; session=${t}; lang=en` }));
    expect(seen.headers['x-mesh-sub']).toBe('cookie-user');
    expect(seen.headers.cookie).toBe('theme=dark; lang=en');
    // The cookie is the only source here: a bearer header does not count.
    const res = await get('/cookie', bearer(t));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="meshwork"');
    await expectInvalid(await get('/cookie', { cookie: 'session=garbage' }));
  });

  it('a custom header, with or without the Bearer prefix', async () => {
    const t = await token('RS256', { sub: 'header-user' });
    expect((await expectAccepted(await get('/header', { 'x-api-token': t }))).headers['x-mesh-sub']).toBe(
      'header-user',
    );
    await expectAccepted(await get('/header', { 'x-api-token': `Bearer ${t}` }));
    expect((await get('/header', bearer(t))).status).toBe(401);
  });

  it('optional mode: no token passes without claim headers; a bad token is still 401; a good one is used', async () => {
    const anon = await expectAccepted(await get('/maybe', { 'x-mesh-sub': 'forged', 'x-tenant': 'forged' }));
    expect(anon.headers).not.toHaveProperty('x-mesh-sub');
    expect(anon.headers).not.toHaveProperty('x-mesh-scopes');
    expect(anon.headers).not.toHaveProperty('x-tenant');
    expect(anon.headers).not.toHaveProperty('x-mesh-user');
    await expectInvalid(await get('/maybe', bearer('not.a.token')));
    await expectInvalid(
      await get('/maybe', bearer(await token('ES256', { exp: Math.floor(Date.now() / 1000) - 3600 }))),
    );
    const user = await expectAccepted(await get('/maybe', bearer(await token('ES256', { sub: 'maybe-user' }))));
    expect(user.headers['x-mesh-sub']).toBe('maybe-user');
    expect(user.headers['x-mesh-user']).toBeDefined();
  });

  it('forwardToken: false drops Authorization before the backend', async () => {
    const seen = await expectAccepted(await get('/nofwd', bearer(await token('ES256', { sub: 'nofwd-user' }))));
    expect(seen.headers).not.toHaveProperty('authorization');
    expect(seen.headers['x-mesh-sub']).toBe('nofwd-user');
  });
});

describe('claims forwarded to the backend', () => {
  const spoofed = {
    'x-mesh-sub': 'root',
    'x-mesh-scopes': 'admin',
    'x-mesh-issuer': 'forged',
    'x-tenant': 'forged-tenant',
    'X-Tenant': 'forged-again',
  };

  it('sends verified claims as the configured headers, replacing client-sent copies', async () => {
    const seen = await expectAccepted(
      await get('/api', {
        ...spoofed,
        ...bearer(await token('ES256', { sub: 'bob', scope: 'read:a', tenant: 'acme' })),
      }),
    );
    expect(seen.headers['x-mesh-sub']).toBe('bob');
    expect(seen.headers['x-mesh-scopes']).toBe('read:a');
    expect(seen.headers['x-tenant']).toBe('acme');
    // Not in this config's claimHeaders: the client's copy is stripped and nothing replaces it.
    expect(seen.headers).not.toHaveProperty('x-mesh-issuer');
  });

  it('strips client-sent claim headers when the token lacks those claims', async () => {
    const seen = await expectAccepted(
      await get('/api', { ...spoofed, ...bearer(await token('ES256', { sub: undefined, scope: undefined })) }),
    );
    for (const h of ['x-mesh-sub', 'x-tenant']) expect(seen.headers).not.toHaveProperty(h);
    // No scope granted: the header says so (empty), and never carries the client's value.
    expect(seen.headers['x-mesh-scopes']).toBe('');
  });

  it('strips client-sent claim headers, including custom non-x-mesh names, on routes without auth', async () => {
    const seen = await expectAccepted(await get('/open', spoofed));
    for (const h of ['x-mesh-sub', 'x-mesh-scopes', 'x-mesh-issuer', 'x-tenant'])
      expect(seen.headers).not.toHaveProperty(h);
  });

  it('renders claims header-safe: no header injection from claim values', async () => {
    const seen = await expectAccepted(
      await get('/api', bearer(await token('ES256', { sub: 'évil\r\nx-injected: 1', tenant: { nested: true } }))),
    );
    expect(seen.headers).not.toHaveProperty('x-injected');
    expect(decodeURIComponent(seen.headers['x-mesh-sub']!)).toBe('évil\r\nx-injected: 1');
    expect(seen.headers['x-tenant']).toBe('{"nested":true}');
  });

  it('by default sends sub, scopes and iss as x-mesh-sub, x-mesh-scopes, x-mesh-issuer', async () => {
    const gw = createGateway({
      mesh: meshFrom(`
auth:
  issuers:
    ec: { issuer: "${ISS.ES256}", audiences: [meshwork], algorithms: [ES256], jwks: ${inline(pub('ES256'))} }
services: { echo: { backends: [{ binding: ECHO }] } }
routes: [{ name: api, service: echo, auth: {} }]
`),
    });
    const seen = await expectAccepted(
      await get('/x', { ...bearer(await token('ES256', { sub: 'dana', scope: 'a b' })), 'x-tenant': 'kept' }, env, gw),
    );
    expect(seen.headers).toMatchObject({
      'x-mesh-sub': 'dana',
      'x-mesh-scopes': 'a b',
      'x-mesh-issuer': ISS.ES256,
      'x-tenant': 'kept',
    });
  });
});

describe('HS256 issuer with a shared secret from env', () => {
  const hs = (secret: string, claims: JWTPayload = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: 'https://hs.test', aud: 'meshwork', sub: 'hs-user', exp: now + 600, ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(secret));
  };

  it('accepts tokens signed with the secret and refuses others', async () => {
    expect((await expectAccepted(await get('/api', bearer(await hs(SECRET))))).headers['x-mesh-sub']).toBe('hs-user');
    await expectInvalid(await get('/api', bearer(await hs(`${SECRET}x`))), 'signature invalid');
  });

  it('503 auth_unavailable when the secret is shorter than 32 bytes or missing', async () => {
    const short = 'too short a secret';
    for (const bindings of [
      { ...ENV, HS_SECRET: short },
      { ...env, FOREIGN_JWKS: inject('foreignJwks') },
    ]) {
      const res = await get('/api', bearer(await hs(short, { jti: crypto.randomUUID() })), bindings);
      expect(res.status).toBe(503);
      expect(((await res.json()) as MeshError).error.code).toBe('auth_unavailable');
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Remote JWKS against the real HTTP JWKS server of the test setup.

type JwksState = { fetches: number; down: boolean; keys: number };

async function jwksEndpoint(name: string, set?: { keys?: JWK[]; maxAge?: number; down?: boolean }): Promise<JwksState> {
  const res = await fetch(`${UP}/jwks-control/${name}`, set ? { method: 'POST', body: JSON.stringify(set) } : {});
  return (await res.json()) as JwksState;
}

const fetchesOf = async (name: string) => (await jwksEndpoint(name)).fetches;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const unique = (what: string) => `${what}-${crypto.randomUUID().slice(0, 8)}`;

/** A gateway whose one issuer ("https://idp.test") takes its keys from the named endpoint. */
function remoteGateway(endpoint: string, cache: Record<string, string> = {}, extraIssuers = '') {
  const cacheYaml = Object.keys(cache).length ? `, cache: ${JSON.stringify(cache)}` : '';
  const mesh = meshFrom(`
auth:
  issuers:
    idp: { issuer: https://idp.test, audiences: [meshwork], algorithms: [ES256, EdDSA, RS256], jwksUri: "${UP}/jwks/${endpoint}"${cacheYaml} }
${extraIssuers}
services: { echo: { backends: [{ binding: ECHO }] } }
routes: [{ name: api, service: echo, auth: {} }]
`);
  return { mesh, gateway: createGateway({ mesh }) };
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

describe('verified-token cache (TokenVerifier)', () => {
  const spec = (cache = '') =>
    bundleFrom(`
auth:
  issuers:
    ec: { issuer: "${ISS.ES256}", audiences: [meshwork], algorithms: [ES256], jwks: ${inline(pub('ES256'))} }
${cache}
services: {}
routes: []
`).config.auth;
  const io = { env: {}, waitUntil: () => {} };

  it('a repeated token is answered from the cache', async () => {
    const v = new TokenVerifier(spec());
    const t = await token('ES256', { sub: 'cached' });
    const first = await v.verify(t, undefined, io);
    expect(first).toMatchObject({ ok: true, cached: false, user: { sub: 'cached', issuer: 'ec' } });
    const again = await v.verify(t, undefined, io);
    expect(again).toMatchObject({ ok: true, cached: true, user: { sub: 'cached' } });
    // The cache does not widen what a route accepts.
    expect(await v.verify(t, new Set(['other']), io)).toMatchObject({ ok: false, status: 401 });
  });

  it('is bounded by verifiedCache.maxEntries (least recently used goes first)', async () => {
    const v = new TokenVerifier(spec('  verifiedCache: { maxEntries: 2 }'));
    const [a, b, c] = await Promise.all([1, 2, 3].map((i) => token('ES256', { sub: `u${i}` })));
    await v.verify(a!, undefined, io);
    await v.verify(b!, undefined, io);
    expect(await v.verify(a!, undefined, io)).toMatchObject({ cached: true });
    await v.verify(c!, undefined, io); // evicts b, the least recently used
    expect(await v.verify(a!, undefined, io)).toMatchObject({ cached: true });
    expect(await v.verify(b!, undefined, io)).toMatchObject({ ok: true, cached: false });
  });

  it('maxEntries: 0 turns it off', async () => {
    const v = new TokenVerifier(spec('  verifiedCache: { maxEntries: 0 }'));
    const t = await token('ES256');
    for (let i = 0; i < 3; i++) expect(await v.verify(t, undefined, io)).toMatchObject({ ok: true, cached: false });
  });

  it('never trusts a cached token past its exp', async () => {
    const v = new TokenVerifier(spec());
    // exp one second ahead; the issuer's 30 s skew would still accept it, the cache must not keep it.
    const t = await token('ES256', { exp: Math.floor(Date.now() / 1000) + 1 });
    expect(await v.verify(t, undefined, io)).toMatchObject({ ok: true, cached: false });
    await sleep(1100);
    expect(await v.verify(t, undefined, io)).toMatchObject({ ok: true, cached: false });
  });
});
