import { env } from 'cloudflare:test';
import { base64url, decodeJwt, exportSPKI, generateKeyPair, importJWK, SignJWT, type JWTPayload } from 'jose';
import { describe, expect, inject, it } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { issuerToken, planFrom } from '../helpers.ts';
import {
  issuerKeys,
  pub,
  inline,
  ISS,
  SECRET,
  ENV,
  type MeshError,
  get,
  bearer,
  token,
  expectAccepted,
  expectInvalid,
} from './fixture.ts';

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
    await expectInvalid(await get('/api', bearer(critical)), 'unsupported critical header parameter');
    // "b64" too (RFC 7797), which jose would understand: none is accepted, as documented.
    const b64 = await new SignJWT({ iss: ISS.ES256, aud: 'meshwork', sub: 'alice', exp: now + 600 })
      .setProtectedHeader({ alg: 'ES256', kid: 'ES256-1', crit: ['b64'], b64: true })
      .sign(key);
    await expectInvalid(await get('/api', bearer(b64)), 'unsupported critical header parameter');
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
    // The backend may call on no other service: the gateway's identity token carries the user.
    expect(user.headers['x-mesh-user']).toBeUndefined();
    expect(decodeJwt(user.headers['x-mesh-identity']!)).toMatchObject({
      sub: 'gateway',
      usr: { claims: { sub: 'maybe-user' } },
    });
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
      plan: planFrom(`
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
