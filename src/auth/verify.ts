/**
 * End-user JWT verification at the gateway (jose), with a verified-token cache.
 *
 * Order of checks, cheapest first: cache; structure (three base64url segments, JSON); the
 * issuer named by `iss` must be one the route accepts; `alg` must be in that issuer's allowlist
 * (so `none` and HS/RS confusion never reach a key); then jose verifies signature, iss, aud,
 * exp, nbf, typ and crit (RFC 7515 4.1.11: any crit parameter is rejected, none is understood);
 * finally iat must not be in the future.
 *
 * Two halves: `Issuers` is compiled from the config and never changes; `AuthState` is the
 * isolate's (verified and rejected tokens, remote key sets) and outlives config versions. A
 * cached verdict is used only while the issuer that gave it is configured exactly as it was.
 */
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { fingerprint, sha256Hex } from '../core/hash.ts';
import { jwksResolver, KeysUnavailable, secretResolver, type KeyIo, type KeyResolver } from '../core/keys.ts';
import { logEvent } from '../core/log.ts';
import { LruCache } from '../core/lru.ts';
import type { VerifiedUser } from '../core/user.ts';
import type { AuthSpec, IssuerSpec } from '../config/schema.ts';
import { scopesOf } from './claims.ts';
import { DEFAULT_REMOTE_JWKS, RemoteJwks, type RemoteJwksOptions } from './jwks-remote.ts';

export type { VerifiedUser } from '../core/user.ts';

export type VerifyResult =
  | { ok: true; user: VerifiedUser; cached: boolean }
  | { ok: false; status: 401; description: string }
  | { ok: false; status: 503; description: string };

export interface CompiledIssuer {
  name: string;
  spec: IssuerSpec;
  algorithms: ReadonlySet<string>;
  /** Changes whenever anything about the issuer does: keys cached for it are tied to it. */
  fingerprint: string;
  /** Inline, env or secret keys; undefined for a remote JWKS (the isolate's AuthState has those). */
  resolve: KeyResolver | undefined;
  remote: { uri: string; options: RemoteJwksOptions } | undefined;
}

const NEGATIVE_TTL_MS = 30_000;
/** Remote key sets an isolate keeps: a few per issuer, across configs that change its URI or cache settings. */
const MAX_REMOTES = 64;
/** Failures that no route, clock or key rotation can change: safe to remember. */
const FINAL_FAILURES = new Set(['malformed token', 'signature invalid', 'token expired']);

function compileIssuer(name: string, spec: IssuerSpec): CompiledIssuer {
  const base = { name, spec, algorithms: new Set<string>(spec.algorithms), fingerprint: fingerprint([name, spec]) };
  if (spec.jwksUri) {
    const { minTtl, maxTtl, defaultTtl, staleFor, refetchCooldown } = spec.cache;
    const options = { ...DEFAULT_REMOTE_JWKS, minTtl, maxTtl, defaultTtl, staleFor, refetchCooldown };
    return { ...base, resolve: undefined, remote: { uri: spec.jwksUri, options } };
  }
  if (spec.secret) return { ...base, resolve: secretResolver(spec.secret.env), remote: undefined };
  return { ...base, resolve: jwksResolver(spec.jwks!), remote: undefined };
}

/** The configured issuers and cache settings: compiled once per config. */
export class Issuers {
  readonly list: readonly CompiledIssuer[];
  /** Keyed by the "iss" value; validation makes those unique across issuers. */
  readonly #byIss = new Map<string, CompiledIssuer>();
  readonly #byName = new Map<string, CompiledIssuer>();
  readonly maxEntries: number;
  readonly maxTtlMs: number;
  /** Of every issuer together: a rejection is remembered under the issuers that gave it. */
  readonly fingerprint: string;

  constructor(spec: AuthSpec) {
    this.list = Object.entries(spec.issuers).map(([n, s]) => compileIssuer(n, s));
    for (const i of this.list) {
      this.#byIss.set(i.spec.issuer, i);
      this.#byName.set(i.name, i);
    }
    this.maxEntries = spec.verifiedCache.maxEntries;
    this.maxTtlMs = spec.verifiedCache.maxTtl * 1000;
    this.fingerprint = fingerprint(this.list.map((i) => i.fingerprint));
  }

  byIss(iss: string): CompiledIssuer | undefined {
    return this.#byIss.get(iss);
  }

  byName(name: string): CompiledIssuer | undefined {
    return this.#byName.get(name);
  }
}

interface CachedVerdict {
  user: VerifiedUser;
  issuerFingerprint: string;
  verifiedAt: number;
}

/** A per-isolate verification state: outlives config versions (see MeshRuntime). */
export class AuthState {
  readonly #verified = new LruCache<CachedVerdict>(0);
  readonly #rejected = new LruCache<{ description: string; issuers: string }>(0);
  readonly #remotes = new Map<string, RemoteJwks>();

  /** Remote key sets, for tests and status. */
  get remotes(): RemoteJwks[] {
    return [...this.#remotes.values()];
  }

  /** The isolate's key set for a remote issuer: one per URI and cache settings, kept across configs. */
  remoteFor(issuer: CompiledIssuer): RemoteJwks {
    const r = issuer.remote!;
    const key = `${issuer.name} ${r.uri} ${fingerprint(r.options)}`;
    let remote = this.#remotes.get(key);
    if (remote) return remote;
    this.#remotes.set(key, (remote = new RemoteJwks(r.uri, issuer.name, r.options)));
    // Oldest first: a set superseded by a later config is the one not asked for any more.
    if (this.#remotes.size > MAX_REMOTES) this.#remotes.delete(this.#remotes.keys().next().value!);
    return remote;
  }

  #fit(issuers: Issuers): void {
    if (this.#verified.maxEntries !== issuers.maxEntries) {
      this.#verified.resize(issuers.maxEntries);
      // Recently rejected tokens (by hash): a replayed bad token costs no signature check.
      this.#rejected.resize(issuers.maxEntries === 0 ? 0 : Math.max(100, issuers.maxEntries / 10));
    }
  }

  /**
   * @param allowed issuer names the route accepts (undefined: all configured issuers)
   */
  async verify(
    issuers: Issuers,
    token: string,
    allowed: ReadonlySet<string> | undefined,
    io: KeyIo,
    options: { audience?: string } = {},
  ): Promise<VerifyResult> {
    this.#fit(issuers);
    // A token checked for another audience (the admin API's) is cached apart from user tokens.
    const hash = await sha256Hex(token);
    const key = options.audience === undefined ? hash : `${options.audience} ${hash}`;
    const now = Date.now();
    const hit = this.#verified.get(key, now);
    if (hit) {
      const issuer = issuers.byName(hit.user.issuer);
      // Only while the issuer is configured as when it vouched, and within this config's maxTtl.
      if (issuer?.fingerprint === hit.issuerFingerprint && now - hit.verifiedAt < issuers.maxTtlMs) {
        if (allowed && !allowed.has(hit.user.issuer))
          return { ok: false, status: 401, description: 'issuer not accepted' };
        return { ok: true, user: hit.user, cached: true };
      }
    }
    const rejected = this.#rejected.get(key, now);
    if (rejected && rejected.issuers === issuers.fingerprint)
      return { ok: false, status: 401, description: rejected.description };

    const result = await this.#verifyUncached(issuers, token, allowed, io, options.audience);
    if (result.ok) {
      const issuer = issuers.byName(result.user.issuer)!;
      this.#verified.set(
        key,
        { user: result.user, issuerFingerprint: issuer.fingerprint, verifiedAt: now },
        Math.min(result.user.exp * 1000, now + issuers.maxTtlMs),
      );
    } else if (FINAL_FAILURES.has(result.description)) {
      this.#rejected.set(key, { description: result.description, issuers: issuers.fingerprint }, now + NEGATIVE_TTL_MS);
    }
    return result;
  }

  async #verifyUncached(
    issuers: Issuers,
    token: string,
    allowed: ReadonlySet<string> | undefined,
    io: KeyIo,
    audience: string | undefined,
  ): Promise<VerifyResult> {
    const fail = (description: string): VerifyResult => ({ ok: false, status: 401, description });
    let alg: unknown;
    let iss: unknown;
    let crit: unknown;
    try {
      if (token.split('.').length !== 3) return fail('malformed token');
      ({ alg, crit } = decodeProtectedHeader(token));
      iss = decodeJwt(token).iss;
    } catch {
      return fail('malformed token');
    }
    // RFC 7515 4.1.11: the gateway understands no extension, so any "crit" is refused (jose would
    // accept "b64" as one it knows).
    if (crit !== undefined) return fail('unsupported critical header parameter');
    if (typeof iss !== 'string') return fail('issuer not accepted');
    const issuer = issuers.byIss(iss);
    if (!issuer || (allowed && !allowed.has(issuer.name))) return fail('issuer not accepted');
    if (typeof alg !== 'string' || !issuer.algorithms.has(alg)) return fail('algorithm not allowed');

    const resolve: KeyResolver = issuer.resolve ?? ((h, keyIo) => this.remoteFor(issuer).resolve(h, keyIo));
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, (header) => resolve(header, io), {
        issuer: issuer.spec.issuer,
        audience: audience ?? issuer.spec.audiences,
        algorithms: [...issuer.algorithms],
        clockTolerance: issuer.spec.clockSkew,
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
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + issuer.spec.clockSkew)
      return fail('token issued in the future');
    return {
      ok: true,
      cached: false,
      user: { issuer: issuer.name, sub: payload.sub, scopes: scopesOf(payload), claims: payload, exp: payload.exp! },
    };
  }
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
