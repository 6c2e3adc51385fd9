/**
 * End-user JWT authentication at the gateway, inside workerd: every accepted algorithm, tokens
 * from other implementations, every way a token must be refused, where tokens come from, what
 * reaches the backend, remote JWKS handling against a real HTTP JWKS server, and the
 * verified-token cache.
 */
import { env } from 'cloudflare:test';
import type { JWK, JWTPayload } from 'jose';
import { expect, inject } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { call, issuerToken, planFrom, type Echo, type TestAlg } from '../helpers.ts';

export const BASE = 'https://gw.example.com';

export const issuerKeys = inject('issuerKeys');

export const pub = (alg: TestAlg, kid = `${alg}-1`): JWK => ({ ...issuerKeys[alg].publicJwk, kid });

export const inline = (...keys: JWK[]) => JSON.stringify({ keys });

export const ISS: Record<TestAlg, string> = {
  RS256: 'https://rsa.test',
  PS256: 'https://pss.test',
  ES256: 'https://ec.test',
  EdDSA: 'https://ed.test',
};

export const SECRET = 'a shared secret of at least 32 bytes!';

export const YAML = `
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

export const ENV = { ...env, FOREIGN_JWKS: inject('foreignJwks'), HS_SECRET: SECRET };

export const gateway = createGateway({ plan: planFrom(YAML) });

export type MeshError = { error: { code: string; message: string; requestId: string } };

export async function get(
  path: string,
  headers: Record<string, string> = {},
  bindings: object = ENV,
  gw = gateway,
): Promise<Response> {
  return call(gw, `${BASE}${path}`, { headers }, bindings);
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A token from the issuer configured for `alg` in YAML above. */
export const token = (alg: TestAlg, claims: JWTPayload = {}, header = {}) =>
  issuerToken(alg, { iss: ISS[alg], ...claims }, header);

export async function expectAccepted(res: Response): Promise<Echo> {
  if (res.status !== 200) throw new Error(`expected 200, got ${res.status}: ${await res.text()}`);
  const seen = (await res.json()) as Echo;
  expect(seen.name).toBe('echo');
  return seen;
}

/** A 401 invalid_token per RFC 6750, with the fixed description the gateway gives. */
export async function expectInvalid(res: Response, description?: string | RegExp): Promise<void> {
  expect(res.status).toBe(401);
  const www = res.headers.get('www-authenticate')!;
  expect(www).toMatch(/^Bearer realm="meshwork", error="invalid_token", error_description="[^"]*"$/);
  const body = (await res.json()) as MeshError;
  expect(body.error.code).toBe('invalid_token');
  if (typeof description === 'string') expect(body.error.message).toBe(description);
  else if (description) expect(body.error.message).toMatch(description);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
