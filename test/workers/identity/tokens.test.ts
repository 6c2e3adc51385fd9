import { env } from 'cloudflare:test';
import {
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  SignJWT,
  type JWK,
  type JWTPayload,
} from 'jose';
import { describe, expect, inject, it } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { bundledConfig } from '../../../src/generated/bundle.ts';
import { IdentityState } from '../../../src/identity/tokens.ts';
import { compilePlan } from '../../../src/plan/compile.ts';
import { withMesh } from '../../../src/wrapper/index.ts';
import {
  call,
  devToken,
  identityHeaders,
  issuerToken,
  memberEnv,
  planFrom,
  type Echo,
  DEFAULT_IDENTITY,
} from '../helpers.ts';

const BASE = 'https://gw.example.com';

const gateway = createGateway({ plan: compilePlan(bundledConfig) });

const memberKeys = inject('memberKeys');

type Whoami = {
  service: string;
  version: string;
  caller: string | null;
  user: { sub: string | null; scopes: string[] } | null;
};

type MeshError = { error: { code: string; message: string; requestId: string } };

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const now = () => Math.floor(Date.now() / 1000);

/** Calls the example service-b (v1) directly over its binding, as anything in the account could. */
function callServiceB(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return env.SERVICE_B_V1.fetch(`https://service-b.internal${path}`, { headers });
}

/** Signs a mesh token with a member's private key, as a (possibly malicious) member could. */
async function signAs(member: string, payload: JWTPayload, header: { typ: string; kid?: string }): Promise<string> {
  const jwk = memberKeys[member]!.privateJwk;
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid!, ...header })
    .sign(await importJWK(jwk, 'EdDSA'));
}

const identityClaims = (sub: string, aud: string): JWTPayload => ({
  iss: 'meshwork',
  sub,
  aud,
  iat: now(),
  exp: now() + 60,
});

/** A user assertion genuinely signed by the gateway's key, as the gateway mints them (for `audience`). */
async function gatewayAssertion(sub: string, scopes: string[], audience = ['service-b']): Promise<string> {
  const minter = new IdentityState(DEFAULT_IDENTITY).minter;
  return minter.userAssertion(
    { issuer: 'local-dev', sub, scopes, claims: { sub }, exp: now() + 300 },
    { services: audience, key: audience.join(',') },
    memberEnv('gateway'),
  );
}

async function expectError(res: Response, status: number, code: string): Promise<MeshError> {
  expect(res.status).toBe(status);
  const body = (await res.json()) as MeshError;
  expect(body.error.code).toBe(code);
  return body;
}

describe('gateway -> service-a -> service-b (the example mesh)', () => {
  it('the example route needs a token with read:a: 401 without, 403 without the scope, 200 with', async () => {
    const none = await call(gateway, `${BASE}/service-a`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="meshwork"');
    const noScope = await call(gateway, `${BASE}/service-a`, { headers: bearer(await devToken({ scope: 'read:b' })) });
    await expectError(noScope, 403, 'insufficient_scope');
    const ok = await call(gateway, `${BASE}/service-a`, {
      headers: bearer(await devToken({ sub: 'alice', scope: 'read:a' })),
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({
      service_a: 'Hello from service-a',
      service_b: 'Hello from service-b',
      called_by: 'gateway',
      user: 'alice',
    });
  });

  it('service-b knows both the calling service and the end user', async () => {
    const res = await call(gateway, `${BASE}/service-a/whoami-b`, {
      headers: bearer(await devToken({ sub: 'alice', scope: 'read:a' })),
    });
    expect(res.status).toBe(200);
    const who = (await res.json()) as Whoami;
    expect(who).toMatchObject({
      service: 'service-b',
      caller: 'service-a',
      user: { sub: 'alice', scopes: ['read:a'] },
    });
    expect(['v1', 'v2']).toContain(who.version);
  });

  it('a token the gateway accepts within its clock skew past exp still carries the user to service-b', async () => {
    for (const exp of [now() - 10, now() + 2]) {
      const res = await call(gateway, `${BASE}/service-a/whoami-b`, {
        headers: bearer(await devToken({ sub: 'late', scope: 'read:a', exp })),
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ caller: 'service-a', user: { sub: 'late' } });
    }
  });

  it('the gateway calling service-b is allowed, as caller "gateway"', async () => {
    const res = await call(gateway, `${BASE}/service-b/whoami`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ service: 'service-b', caller: 'gateway', user: null });
  });
});

describe('callers service-b refuses', () => {
  it('a genuine mesh member not on allowCallers (service-c): 403', async () => {
    const res = await env.INTRUDER.fetch('https://service-c.internal/');
    const body = await expectError(res, 403, 'forbidden');
    expect(body.error.message).toContain('service-c');
  });

  it('a direct call without a mesh identity: 401', async () => {
    await expectError(await callServiceB('/service-b/whoami'), 401, 'unauthenticated_caller');
    await expectError(await callServiceB('/service-b'), 401, 'unauthenticated_caller');
  });

  it('a valid identity of an allowed caller is accepted directly (the control for the forgeries below)', async () => {
    const res = await callServiceB('/service-b/whoami', await identityHeaders('service-a', 'service-b'));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ caller: 'service-a', user: null });
  });

  it.each([
    ['garbage', async () => 'garbage'],
    ['a JWT-shaped nothing', async () => 'eyJhbGciOiJFZERTQSJ9.e30.c2ln'],
    [
      'signed by service-c but claiming to be the gateway',
      () => signAs('service-c', identityClaims('gateway', 'service-b'), { typ: 'mesh-id+jwt' }),
    ],
    [
      "signed by service-c under the gateway's kid",
      () =>
        signAs('service-c', identityClaims('gateway', 'service-b'), {
          typ: 'mesh-id+jwt',
          kid: memberKeys.gateway!.publicJwk.kid!,
        }),
    ],
    [
      'signed by service-a for another audience',
      () => signAs('service-a', identityClaims('service-a', 'service-a'), { typ: 'mesh-id+jwt' }),
    ],
    [
      'expired',
      () =>
        signAs(
          'service-a',
          { ...identityClaims('service-a', 'service-b'), iat: now() - 600, exp: now() - 300 },
          { typ: 'mesh-id+jwt' },
        ),
    ],
    [
      'a user assertion used as identity',
      () => signAs('gateway', identityClaims('gateway', 'service-b'), { typ: 'mesh-user+jwt' }),
    ],
    ['an end-user token', () => devToken({ sub: 'gateway', aud: 'service-b', iss: 'meshwork' })],
  ])('a forged or invalid x-mesh-identity (%s): 401', async (_what, make) => {
    await expectError(
      await callServiceB('/service-b/whoami', { 'x-mesh-identity': await make() }),
      401,
      'invalid_identity',
    );
  });

  it('a user assertion not signed by the gateway: 401', async () => {
    const identity = await identityHeaders('service-a', 'service-b');
    const user = {
      iss: 'meshwork',
      aud: ['service-b'],
      sub: 'mallory',
      iat: now(),
      exp: now() + 300,
      usr: { issuer: 'local-dev', scopes: ['admin'], claims: { sub: 'mallory' } },
    };
    // service-a inventing a user, under its own kid or the gateway's.
    for (const kid of [memberKeys['service-a']!.publicJwk.kid!, memberKeys.gateway!.publicJwk.kid!]) {
      const forged = await signAs('service-a', user, { typ: 'mesh-user+jwt', kid });
      await expectError(
        await callServiceB('/service-b/whoami', { ...identity, 'x-mesh-user': forged }),
        401,
        'invalid_identity',
      );
    }
    // The same claims signed by the gateway are believed: the refusals above are about the signer.
    const genuine = await signAs('gateway', user, { typ: 'mesh-user+jwt' });
    const res = await callServiceB('/service-b/whoami', { ...identity, 'x-mesh-user': genuine });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ caller: 'service-a', user: { sub: 'mallory' } });
  });

  it('an identity token carrying a user is believed only when the gateway signed it', async () => {
    const usr = { issuer: 'local-dev', claims: { sub: 'mallory', scope: 'admin' } };
    // service-a (allowed to call service-b) inventing a user inside its own identity token.
    const fromA = await signAs(
      'service-a',
      { ...identityClaims('service-a', 'service-b'), usr },
      { typ: 'mesh-id+jwt' },
    );
    const refused = await expectError(
      await callServiceB('/service-b/whoami', { 'x-mesh-identity': fromA }),
      401,
      'invalid_identity',
    );
    expect(refused.error.message).toContain("not the gateway's");
    // A gateway-signed one with a malformed user is refused too, not read as no user.
    for (const bad of [{ issuer: 'local-dev' }, { issuer: 7, claims: {} }, 'alice']) {
      const malformed = await signAs(
        'gateway',
        { ...identityClaims('gateway', 'service-b'), usr: bad },
        { typ: 'mesh-id+jwt' },
      );
      await expectError(
        await callServiceB('/service-b/whoami', { 'x-mesh-identity': malformed }),
        401,
        'invalid_identity',
      );
    }
    // The control: the gateway's edge token, sub and scopes read from the claims it carries.
    const edge = await signAs('gateway', { ...identityClaims('gateway', 'service-b'), usr }, { typ: 'mesh-id+jwt' });
    const res = await callServiceB('/service-b/whoami', { 'x-mesh-identity': edge });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ caller: 'gateway', user: { sub: 'mallory', scopes: ['admin'] } });
  });

  it('the gateway sends one token to a service that may call on no other, and two to one that may', async () => {
    const issuerKey = JSON.stringify({ keys: [inject('issuerKeys').ES256.publicJwk] });
    const mesh = (onward: string) => `
auth:
  issuers:
    ec: { issuer: https://hops.test, audiences: [meshwork], algorithms: [ES256], jwks: ${issuerKey} }
services:
  echo:
    backends: [{ binding: ECHO }]
  next:
    backends: [{ binding: ECHO }]
    policy: { allowCallers: [${onward}] }
routes:
  - name: api
    matches: [{ path: { prefix: /api } }]
    service: echo
    auth: {}
`;
    const token = await issuerToken('ES256', { iss: 'https://hops.test', sub: 'lee', scope: 'read:a' });
    const seen = async (onward: string) => {
      const gw = createGateway({ plan: planFrom(mesh(onward)) });
      const res = await call(gw, `${BASE}/api`, { headers: bearer(token) });
      expect(res.status).toBe(200);
      return ((await res.json()) as Echo).headers;
    };
    // echo may not call next: its identity token carries the user, nothing else does.
    const alone = await seen('gateway');
    expect(alone['x-mesh-user']).toBeUndefined();
    expect(decodeJwt(alone['x-mesh-identity']!)).toMatchObject({
      sub: 'gateway',
      aud: 'echo',
      usr: { issuer: 'ec', claims: { sub: 'lee', scope: 'read:a' } },
    });
    expect(alone['x-mesh-sub']).toBe('lee');
    // echo may call next: a plain identity token, and the assertion it passes on, for both.
    const onward = await seen('echo');
    expect(decodeJwt(onward['x-mesh-identity']!)).not.toHaveProperty('usr');
    expect(decodeJwt(onward['x-mesh-user']!)).toMatchObject({ sub: 'lee', aud: ['echo', 'next'] });
    // What the hop costs: nine headers the gateway adds (the client sent only authorization),
    // about 790 bytes; with a separate assertion it was ten and about 1,120.
    const added = Object.entries(alone).filter(([name]) => name !== 'authorization');
    expect(added.map(([name]) => name).sort()).toEqual([
      'traceparent',
      'x-forwarded-host',
      'x-forwarded-proto',
      'x-mesh-identity',
      'x-mesh-issuer',
      'x-mesh-route',
      'x-mesh-scopes',
      'x-mesh-sub',
      'x-request-id',
    ]);
    expect(added.reduce((n, [name, value]) => n + name.length + value.length + 4, 0)).toBeLessThan(850);
  });

  it("a genuine user assertion minted for other services: 401 (it cannot be replayed where the user's request could not go)", async () => {
    const identity = await identityHeaders('service-a', 'service-b');
    const forA = await gatewayAssertion('alice', ['read:a'], ['service-a']);
    await expectError(
      await callServiceB('/service-b/whoami', { ...identity, 'x-mesh-user': forA }),
      401,
      'invalid_identity',
    );
    const forBoth = await gatewayAssertion('alice', ['read:a'], ['service-a', 'service-b']);
    expect((await callServiceB('/service-b/whoami', { ...identity, 'x-mesh-user': forBoth })).status).toBe(200);
  });

  it('what the gateway mints for a request to service-a is good at service-b (which service-a may call) and names no other service', async () => {
    const token = await devToken({ sub: 'chain', scope: 'read:a' });
    const res = await call(gateway, `${BASE}/service-a/whoami-b`, { headers: bearer(token) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ service: 'service-b', caller: 'service-a', user: { sub: 'chain' } });
  });

  it('an identity token with a crit header: 401', async () => {
    const critical = await signAs('service-a', identityClaims('service-a', 'service-b'), {
      typ: 'mesh-id+jwt',
      crit: ['b64'],
      b64: true,
    } as never);
    await expectError(
      await callServiceB('/service-b/whoami', { 'x-mesh-identity': critical }),
      401,
      'invalid_identity',
    );
  });
});

describe('a service that cannot read the mesh public keys', () => {
  it("answers 503 auth_unavailable, not 401 (the fault is not the caller's)", async () => {
    const svc = withMesh(() => new Response('reached'), { service: 'service-b' });
    const { MESH_PUBLIC_KEYS: _keys, ...withoutKeys } = memberEnv('service-b');
    const headers = await identityHeaders('service-a', 'service-b');
    await expectError(
      await call(svc, 'https://service-b.internal/', { headers }, withoutKeys),
      503,
      'auth_unavailable',
    );
    expect(await (await call(svc, 'https://service-b.internal/', { headers }, memberEnv('service-b'))).text()).toBe(
      'reached',
    );
  });
});

describe('spoofed x-mesh-* headers sent to the gateway', () => {
  it('never reach a service: the user comes only from the verified token', async () => {
    const spoofed = {
      'x-mesh-user': await gatewayAssertion('mallory', ['admin']),
      'x-mesh-identity': (await identityHeaders('gateway', 'service-b'))['x-mesh-identity']!,
      'x-mesh-caller': 'service-a',
      'x-mesh-sub': 'mallory',
      'x-mesh-scopes': 'admin',
    };
    const res = await call(gateway, `${BASE}/service-a/whoami-b`, {
      headers: { ...spoofed, ...bearer(await devToken({ sub: 'alice', scope: 'read:a' })) },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ caller: 'service-a', user: { sub: 'alice', scopes: ['read:a'] } });
  });

  it('a genuine gateway-signed user assertion replayed by a client is dropped on a route without auth', async () => {
    const res = await call(gateway, `${BASE}/service-b/whoami`, {
      headers: { 'x-mesh-user': await gatewayAssertion('mallory', ['admin']), 'x-mesh-sub': 'mallory' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ caller: 'gateway', user: null });
  });
});

describe('identity tokens', () => {
  it('are cached and reused by the caller, and live about 60 s', async () => {
    // An ES256 gateway key: its signatures are randomised, so equal tokens mean a reused token.
    const es = await generateKeyPair('ES256', { extractable: true });
    const bindings = {
      ...env,
      MESH_SIGNING_KEY: JSON.stringify({ ...(await exportJWK(es.privateKey)), kid: 'gateway.es' }),
    };
    const gw = createGateway({
      plan: planFrom(
        'services: { echo: { backends: [{ binding: ECHO }] }, echo2: { backends: [{ binding: ECHO_V2 }] } }\nroutes: [{ name: two, matches: [{ path: { prefix: /two } }], service: echo2 }, { name: all, service: echo }]',
      ),
    });
    const seen = async (path: string) =>
      ((await (await call(gw, `${BASE}${path}`, {}, bindings)).json()) as Echo).headers['x-mesh-identity']!;
    const first = await seen('/x');
    expect(decodeProtectedHeader(first)).toMatchObject({ alg: 'ES256', kid: 'gateway.es', typ: 'mesh-id+jwt' });
    const claims = decodeJwt(first);
    expect(claims).toMatchObject({ iss: 'meshwork', sub: 'gateway', aud: 'echo' });
    expect(claims.exp! - claims.iat!).toBe(60);
    expect(Math.abs(claims.iat! - now())).toBeLessThanOrEqual(5);
    expect(await seen('/y')).toBe(first);
    // One token per target service.
    const other = await seen('/two');
    expect(decodeJwt(other).aud).toBe('echo2');
    expect(await seen('/z')).toBe(first);
  });

  it('key rotation: with old and new public keys of a member listed, tokens from both verify', async () => {
    const pair = async (kid: string) => {
      const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
      return {
        privateJwk: { ...(await exportJWK(privateKey)), kid },
        publicJwk: { ...(await exportJWK(publicKey)), kid } as JWK,
      };
    };
    const [oldKey, newKey, unlisted] = await Promise.all([
      pair('service-a.2025'),
      pair('service-a.2026'),
      pair('service-a.rogue'),
    ]);
    const mint = (k: { privateJwk: JWK }) =>
      new IdentityState(DEFAULT_IDENTITY).minter.identityFor('service-b', {
        MESH_SIGNING_KEY: JSON.stringify(k.privateJwk),
      });
    const verifier = (...keys: JWK[]) =>
      new IdentityState({ ...DEFAULT_IDENTITY, publicKeys: { keys: keys } }).verifier;
    const io = { env: {}, waitUntil: () => {} };

    const during = verifier(oldKey.publicJwk, newKey.publicJwk);
    expect(await during.verifyIdentity(await mint(oldKey), 'service-b', io)).toEqual({ ok: true, caller: 'service-a' });
    expect(await during.verifyIdentity(await mint(newKey), 'service-b', io)).toEqual({ ok: true, caller: 'service-a' });
    expect(await during.verifyIdentity(await mint(unlisted), 'service-b', io)).toMatchObject({ ok: false });

    // Rotation done: the old key is removed from the set and its tokens stop verifying.
    const after = verifier(newKey.publicJwk);
    expect(await after.verifyIdentity(await mint(newKey), 'service-b', io)).toEqual({ ok: true, caller: 'service-a' });
    expect(await after.verifyIdentity(await mint(oldKey), 'service-b', io)).toMatchObject({ ok: false });
  });
});
