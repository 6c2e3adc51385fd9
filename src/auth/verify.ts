/**
 * End-user JWT verification at the gateway (jose), with a verified-token cache.
 *
 * Order of checks, cheapest first: cache; structure (three base64url segments, JSON); the
 * issuer named by `iss` must be one the route accepts; `alg` must be in that issuer's allowlist
 * (so `none` and HS/RS confusion never reach a key); then jose verifies signature, iss, aud,
 * exp, nbf, typ and crit (RFC 7515 4.1.11: any crit parameter is rejected, none is understood);
 * finally iat must not be in the future.
 */
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import type { AuthSpec, IssuerSpec } from '../config/schema.ts';
import { logEvent } from '../mesh/upstream.ts';
import { scopesOf } from './claims.ts';
import { DEFAULT_REMOTE_JWKS, RemoteJwks } from './jwks-remote.ts';
import { jwksResolver, KeysUnavailable, secretResolver, type KeyIo, type KeyResolver } from './keys.ts';
import { LruCache, tokenHash } from './lru.ts';

export interface VerifiedUser {
  /** Name of the configured issuer that vouched for the token. */
  issuer: string;
  sub: string | undefined;
  scopes: readonly string[];
  claims: JWTPayload;
  /** Token expiry, seconds since the epoch. */
  exp: number;
}

export type VerifyResult =
  | { ok: true; user: VerifiedUser; cached: boolean }
  | { ok: false; status: 401; description: string }
  | { ok: false; status: 503; description: string };

interface CompiledIssuer {
  name: string;
  spec: IssuerSpec;
  algorithms: ReadonlySet<string>;
  clockSkew: number;
  resolve: KeyResolver;
  remote?: RemoteJwks;
}

const DEFAULT_CACHE_ENTRIES = 10_000;
const DEFAULT_CACHE_TTL = 300;
const NEGATIVE_TTL_MS = 30_000;
/** Failures that no route, clock or key rotation can change: safe to remember. */
const FINAL_FAILURES = new Set(['malformed token', 'signature invalid', 'token expired']);

function compileIssuer(name: string, spec: IssuerSpec): CompiledIssuer {
  const base = { name, spec, algorithms: new Set<string>(spec.algorithms), clockSkew: spec.clockSkew ?? 30 };
  if (spec.jwksUri) {
    const c = spec.cache ?? {};
    const remote = new RemoteJwks(spec.jwksUri, name, {
      ...DEFAULT_REMOTE_JWKS,
      ...(c.minTtl !== undefined ? { minTtl: c.minTtl } : {}),
      ...(c.maxTtl !== undefined ? { maxTtl: c.maxTtl } : {}),
      ...(c.defaultTtl !== undefined ? { defaultTtl: c.defaultTtl } : {}),
      ...(c.staleFor !== undefined ? { staleFor: c.staleFor } : {}),
      ...(c.refetchCooldown !== undefined ? { refetchCooldown: c.refetchCooldown } : {}),
    });
    return { ...base, remote, resolve: (h, io) => remote.resolve(h, io) };
  }
  if (spec.secret) return { ...base, resolve: secretResolver(spec.secret.env) };
  return { ...base, resolve: jwksResolver(spec.jwks!) };
}

function describe(e: unknown): string {
  if (e instanceof errors.JWTExpired) return 'token expired';
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'nbf') return 'token not yet valid';
    if (e.claim === 'iss') return 'issuer not accepted';
    if (e.claim === 'aud') return 'audience not accepted';
    if (e.claim === 'exp') return 'token has no expiry';
    return `claim "${e.claim}" invalid`;
  }
  if (e instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (e instanceof errors.JWSSignatureVerificationFailed) return 'signature invalid';
  if (e instanceof errors.JWKSNoMatchingKey) return 'no key matches the token (kid)';
  if (e instanceof errors.JWKSMultipleMatchingKeys) return 'signature invalid';
  if (e instanceof errors.JOSENotSupported)
    return /Extension Header Parameter/.test(e.message)
      ? 'unsupported critical header parameter'
      : 'algorithm or key not supported';
  return 'malformed token';
}

export class TokenVerifier {
  readonly #issuers: CompiledIssuer[];
  /** Keyed by the "iss" value; validation makes those unique across issuers. */
  readonly #byIss = new Map<string, CompiledIssuer>();
  readonly #cache: LruCache<VerifiedUser>;
  readonly #rejected: LruCache<string>;
  readonly #maxTtlMs: number;

  constructor(spec: AuthSpec | undefined) {
    this.#issuers = Object.entries(spec?.issuers ?? {}).map(([n, s]) => compileIssuer(n, s));
    for (const i of this.#issuers) this.#byIss.set(i.spec.issuer, i);
    const entries = spec?.verifiedCache?.maxEntries ?? DEFAULT_CACHE_ENTRIES;
    this.#cache = new LruCache(entries);
    // Recently rejected tokens (by hash): a replayed bad token costs no signature check.
    this.#rejected = new LruCache(entries === 0 ? 0 : Math.max(100, entries / 10));
    this.#maxTtlMs = (spec?.verifiedCache?.maxTtl ?? DEFAULT_CACHE_TTL) * 1000;
  }

  /** Remote key sets, for tests and status. */
  get remotes(): RemoteJwks[] {
    return this.#issuers.flatMap((i) => (i.remote ? [i.remote] : []));
  }

  /**
   * @param allowed issuer names the route accepts (undefined: all configured issuers)
   */
  async verify(token: string, allowed: ReadonlySet<string> | undefined, io: KeyIo): Promise<VerifyResult> {
    const key = await tokenHash(token);
    const now = Date.now();
    const hit = this.#cache.get(key, now);
    if (hit) {
      if (allowed && !allowed.has(hit.issuer)) return { ok: false, status: 401, description: 'issuer not accepted' };
      return { ok: true, user: hit, cached: true };
    }
    const rejected = this.#rejected.get(key, now);
    if (rejected) return { ok: false, status: 401, description: rejected };

    const result = await this.#verifyUncached(token, allowed, io);
    if (result.ok) {
      this.#cache.set(key, result.user, Math.min(result.user.exp * 1000, now + this.#maxTtlMs));
    } else if (FINAL_FAILURES.has(result.description)) {
      this.#rejected.set(key, result.description, now + NEGATIVE_TTL_MS);
    }
    return result;
  }

  async #verifyUncached(token: string, allowed: ReadonlySet<string> | undefined, io: KeyIo): Promise<VerifyResult> {
    const fail = (description: string): VerifyResult => ({ ok: false, status: 401, description });
    let alg: unknown;
    let iss: unknown;
    try {
      if (token.split('.').length !== 3) return fail('malformed token');
      alg = decodeProtectedHeader(token).alg;
      iss = decodeJwt(token).iss;
    } catch {
      return fail('malformed token');
    }
    if (typeof iss !== 'string') return fail('issuer not accepted');
    const issuer = this.#byIss.get(iss);
    if (!issuer || (allowed && !allowed.has(issuer.name))) return fail('issuer not accepted');
    if (typeof alg !== 'string' || !issuer.algorithms.has(alg)) return fail('algorithm not allowed');

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, (header) => issuer.resolve(header, io), {
        issuer: issuer.spec.issuer,
        audience: issuer.spec.audiences,
        algorithms: [...issuer.algorithms],
        clockTolerance: issuer.clockSkew,
        requiredClaims: ['exp'],
        crit: {},
        ...(issuer.spec.typ ? { typ: issuer.spec.typ } : {}),
      }));
    } catch (e) {
      if (e instanceof KeysUnavailable) {
        logEvent('error', 'token keys unavailable', { issuer: issuer.name, error: e.message });
        return { ok: false, status: 503, description: `keys for issuer "${issuer.name}" are unavailable` };
      }
      return fail(describe(e));
    }
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + issuer.clockSkew)
      return fail('token issued in the future');
    return {
      ok: true,
      cached: false,
      user: { issuer: issuer.name, sub: payload.sub, scopes: scopesOf(payload), claims: payload, exp: payload.exp! },
    };
  }
}
