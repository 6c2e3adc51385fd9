import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { importJWK, SignJWT, type JWTHeaderParameters, type JWTPayload } from 'jose';
import { inject } from 'vitest';
import { makeBundle } from '../../src/config/bundle.ts';
import { CONFIG_FORMAT, Config, type MeshBundle } from '../../src/config/schema.ts';
import { formatIssue, validateSources } from '../../src/config/validate.ts';
import { IdentityState, type IdentityMinter } from '../../src/identity/tokens.ts';
import { compilePlan, type Plan } from '../../src/plan/compile.ts';

/** Validates and compiles YAML inside workerd, exactly as the control plane will. */
export function bundleFrom(yaml: string): MeshBundle {
  const r = validateSources([{ name: 'test.yaml', text: yaml }]);
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  return { version: 'test-version', format: CONFIG_FORMAT, config: r.config };
}

export function planFrom(yaml: string): Plan {
  return compilePlan(bundleFrom(yaml));
}

/** A bundle as the build or an apply makes it (content version, current format). */
export async function versionedBundle(yaml: string): Promise<MeshBundle> {
  const r = validateSources([{ name: 'test.yaml', text: yaml }]);
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  return makeBundle(r.config, [{ name: 'test.yaml', text: yaml }]);
}

/** The identity section with every default: how a worker without identity settings signs. */
export const DEFAULT_IDENTITY = Config.parse({}).identity;

export type Echo = { name: string; method: string; url: string; headers: Record<string, string>; body: string | null };

interface Fetchable {
  fetch(request: Request, env: never, ctx: ExecutionContext): Response | Promise<Response>;
}

/** Calls a worker's fetch handler in this isolate, with the test env's real bindings. */
export async function call(
  worker: Fetchable,
  input: string | Request,
  init?: RequestInit,
  bindings: object = env,
): Promise<Response> {
  const request = typeof input === 'string' ? new Request(input, init) : input;
  const ctx = createExecutionContext();
  const res = await worker.fetch(request, bindings as never, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** Env for a worker acting as `member`: its own signing key and everyone's public keys. */
export function memberEnv(member: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...env, MESH_SIGNING_KEY: JSON.stringify(inject('memberKeys')[member]!.privateJwk), ...extra };
}

const minters = new Map<string, IdentityMinter>();

/** Headers carrying `member`'s identity token for a call to `target`, minted as the mesh does. */
export async function identityHeaders(member: string, target: string): Promise<Record<string, string>> {
  let minter = minters.get(member);
  if (!minter) minters.set(member, (minter = new IdentityState(DEFAULT_IDENTITY).minter));
  return { 'x-mesh-identity': await minter.identityFor(target, memberEnv(member)) };
}

export type TestAlg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';

const issuerSigningKeys = new Map<TestAlg, Promise<CryptoKey | Uint8Array>>();

/**
 * A user token as an identity provider issues it: signed with the test issuer key for `alg`
 * (kid "<alg>-1"), aud meshwork, sub alice, valid for 10 minutes. `claims` and `header` override
 * (a claim set to undefined is left out).
 */
export async function issuerToken(
  alg: TestAlg,
  claims: JWTPayload = {},
  header: Partial<JWTHeaderParameters> = {},
): Promise<string> {
  let key = issuerSigningKeys.get(alg);
  if (!key) issuerSigningKeys.set(alg, (key = importJWK(inject('issuerKeys')[alg].privateJwk, alg)));
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ aud: 'meshwork', sub: 'alice', iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg, kid: `${alg}-1`, typ: 'JWT', ...header })
    .sign(await key);
}

/** A token the example routes' dev issuer accepts (the test env's MESH_DEV_JWKS holds its key). */
export function devToken(claims: JWTPayload = {}): Promise<string> {
  return issuerToken('ES256', { iss: 'https://dev.meshwork.local', ...claims });
}
