/**
 * The mesh's answer to mTLS: short-lived signed tokens.
 *
 *  x-mesh-identity  who is calling: typ mesh-id+jwt, iss "meshwork", sub = calling member,
 *                   aud = called service, ~60 s. Minted by the caller, cached and reused until
 *                   near expiry, so a call costs no signature.
 *  x-mesh-user      the end user the gateway verified: typ mesh-user+jwt, signed by the gateway,
 *                   sub = user, expiring with the user's token (at least 30 s, at most
 *                   5 min). Passed along unchanged on east-west calls, so every service knows
 *                   both the user and its immediate caller, and no service can invent a user.
 *
 * When the gateway calls a service that may call on no other (its user audience is itself alone),
 * one token carries both: the gateway's identity token for that service with the user in `usr`
 * (the "edge token"), and no x-mesh-user. It is addressed to that one service, so there is
 * nowhere it could be passed on to; a service that may call on is sent the two tokens, because an
 * identity token that also served as the assertion passed along would let the next service
 * replay it as the gateway. Only a token signed by the gateway's key may carry a user.
 */
import { decodeProtectedHeader, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { textOf, type MeshBindings } from '../core/bindings.ts';
import { fingerprint, hmacHex } from '../core/hash.ts';
import { KeysUnavailable, type KeyIo, type KvSeal } from '../core/keys.ts';
import { LruCache } from '../core/lru.ts';
import { scopesOf, type MeshUser, type VerifiedUser } from '../core/user.ts';
import type { IdentitySpec } from '../config/schema.ts';
import { IDENTITY_ALGORITHMS, MeshKeys, memberOfKid } from './keys.ts';

export type { MeshUser } from '../core/user.ts';

const ISSUER = 'meshwork';
const IDENTITY_TYP = 'mesh-id+jwt';
const USER_TYP = 'mesh-user+jwt';
const USER_MAX_TTL = 300;
/**
 * The gateway accepts a token up to its clock skew past exp; an assertion that expired with it
 * would then be refused by the very service the gateway admitted the request to.
 */
const USER_MIN_TTL = 30;
/** Re-mint when less than this is left, so a token never expires in flight. */
const REFRESH_MARGIN = 15;
const CLOCK_SKEW = 5;

/** `user`: the end user, when the caller is the gateway and its token carries one (an edge token). */
export type IdentityCheck = { ok: true; caller: string; user?: MeshUser } | { ok: false; description: string };
/** Who signs user assertions and edge tokens: only this member's key may vouch for a user. */
const GATEWAY_MEMBER = 'gateway';
export type UserCheck = { ok: true; user: MeshUser } | { ok: false; description: string };

const now = () => Math.floor(Date.now() / 1000);

/**
 * Who a user assertion is for: a service the gateway sends the request to, and every service it
 * may call on from there (by the services' allowCallers), so the assertion passes along a chain
 * of calls and nowhere else. `key` names the set for caching.
 */
export interface UserAudience {
  readonly services: readonly string[];
  readonly key: string;
}

/** Caller side: mints and caches identity tokens and (at the gateway) user assertions. */
export class IdentityMinter {
  readonly #tokens = new Map<string, { token: string; exp: number }>();
  /** Per verified user object (the gateway's token cache hands back the same one per token), per audience. */
  readonly #users = new WeakMap<VerifiedUser, Map<string, { token: string; exp: number }>>();
  /** Edge tokens, per verified user object, per target service. */
  readonly #edge = new WeakMap<VerifiedUser, Map<string, { token: string; exp: number }>>();

  constructor(
    readonly keys: MeshKeys,
    readonly ttl: number,
  ) {}

  /** The cached identity token for `target` while it is fresh; undefined when one must be minted. */
  cachedIdentity(target: string): string | undefined {
    const cached = this.#tokens.get(target);
    return cached && cached.exp - now() > REFRESH_MARGIN ? cached.token : undefined;
  }

  /** The cached assertion of `user` for `audience` while it is fresh; undefined when one must be minted. */
  cachedUserAssertion(user: VerifiedUser, audience: UserAudience): string | undefined {
    const cached = this.#users.get(user)?.get(audience.key);
    return cached && cached.exp - now() > REFRESH_MARGIN ? cached.token : undefined;
  }

  /** The cached edge token (identity and user in one) of `user` for `target`, while fresh. */
  cachedEdgeIdentity(user: VerifiedUser, target: string): string | undefined {
    const cached = this.#edge.get(user)?.get(target);
    return cached && cached.exp - now() > REFRESH_MARGIN ? cached.token : undefined;
  }

  /**
   * The gateway's identity token for `target` carrying `user`: for a target whose user audience
   * is itself alone (see the top of this file). sub and scopes travel inside the claims.
   */
  async edgeIdentity(user: VerifiedUser, target: string, env: MeshBindings): Promise<string> {
    const cached = this.cachedEdgeIdentity(user, target);
    if (cached !== undefined) return cached;
    const minted = await this.#signIdentity(
      target,
      env,
      { usr: { issuer: user.issuer, claims: user.claims } },
      user.exp,
    );
    let perTarget = this.#edge.get(user);
    if (!perTarget) this.#edge.set(user, (perTarget = new Map()));
    perTarget.set(target, minted);
    return minted.token;
  }

  async identityFor(target: string, env: MeshBindings): Promise<string> {
    const cached = this.cachedIdentity(target);
    if (cached !== undefined) return cached;
    const minted = await this.#signIdentity(target, env, {});
    this.#tokens.set(target, minted);
    return minted.token;
  }

  /** An identity token for `target` with `payload`; carrying a user, it ends no later than the user's (at least USER_MIN_TTL). */
  async #signIdentity(
    target: string,
    env: MeshBindings,
    payload: JWTPayload,
    userExp?: number,
  ): Promise<{ token: string; exp: number }> {
    const signer = await this.keys.signer(env);
    const iat = now();
    const exp =
      userExp === undefined ? iat + this.ttl : Math.min(iat + this.ttl, Math.max(userExp, iat + USER_MIN_TTL));
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: IDENTITY_TYP })
      .setIssuer(ISSUER)
      .setSubject(signer.member)
      .setAudience(target)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(signer.key);
    return { token, exp };
  }

  /**
   * The gateway's assertion of `user`, for the services in `audience`: the one the request goes to
   * and those it may go on to call (UserAudience). A service accepts it only if it is among them.
   */
  async userAssertion(user: VerifiedUser, audience: UserAudience, env: MeshBindings): Promise<string> {
    const cached = this.cachedUserAssertion(user, audience);
    if (cached !== undefined) return cached;
    const signer = await this.keys.signer(env);
    const iat = now();
    const exp = Math.min(Math.max(user.exp, iat + USER_MIN_TTL), iat + USER_MAX_TTL);
    const jwt = new SignJWT({ usr: { issuer: user.issuer, scopes: user.scopes, claims: user.claims } })
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: USER_TYP })
      .setIssuer(ISSUER)
      .setAudience([...audience.services])
      .setIssuedAt(iat)
      .setExpirationTime(exp);
    if (user.sub !== undefined) jwt.setSubject(user.sub);
    const token = await jwt.sign(signer.key);
    let perAudience = this.#users.get(user);
    if (!perAudience) this.#users.set(user, (perAudience = new Map()));
    perAudience.set(audience.key, { token, exp });
    return token;
  }
}

/** Callee side: verifies identity tokens and user assertions, with a cache per token. */
export class IdentityVerifier {
  readonly #identities = new LruCache<{ caller: string; user?: MeshUser }>(10_000);
  readonly #users = new LruCache<MeshUser>(10_000);

  constructor(readonly keys: MeshKeys) {}

  async verifyIdentity(token: string, self: string, io: KeyIo): Promise<IdentityCheck> {
    const key = `${self} ${token}`;
    const hit = this.#identities.get(key);
    if (hit) return { ok: true, ...hit };
    try {
      const { kid, crit } = decodeProtectedHeader(token);
      if (crit !== undefined) return { ok: false, description: 'invalid identity token' };
      const { payload } = await jwtVerify(token, (h) => this.keys.publicKeys(h, io), {
        issuer: ISSUER,
        audience: self,
        algorithms: [...IDENTITY_ALGORITHMS],
        typ: IDENTITY_TYP,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_SKEW,
        crit: {},
      });
      if (memberOfKid(kid) !== payload.sub)
        return { ok: false, description: 'identity token not signed by its subject' };
      const verified: { caller: string; user?: MeshUser } = { caller: payload.sub! };
      if (payload.usr !== undefined) {
        // A member's own key could sign a user into its token: only the gateway's may.
        if (payload.sub !== GATEWAY_MEMBER)
          return { ok: false, description: "identity token carries a user but is not the gateway's" };
        const user = edgeUser(payload.usr);
        if (!user) return { ok: false, description: 'malformed user in identity token' };
        verified.user = user;
      }
      this.#identities.set(key, verified, payload.exp! * 1000);
      return { ok: true, ...verified };
    } catch (e) {
      if (e instanceof KeysUnavailable) throw e;
      return { ok: false, description: 'invalid identity token' };
    }
  }

  /** `self`: the service verifying; the assertion must name it among its audience. */
  async verifyUser(token: string, self: string, io: KeyIo): Promise<UserCheck> {
    const hit = this.#users.get(`${self} ${token}`);
    if (hit) return { ok: true, user: hit };
    try {
      const { kid, crit } = decodeProtectedHeader(token);
      if (crit !== undefined) return { ok: false, description: 'invalid user assertion' };
      if (memberOfKid(kid) !== GATEWAY_MEMBER)
        return { ok: false, description: 'user assertion not signed by the gateway' };
      const { payload } = await jwtVerify(token, (h) => this.keys.publicKeys(h, io), {
        issuer: ISSUER,
        audience: self,
        algorithms: [...IDENTITY_ALGORITHMS],
        typ: USER_TYP,
        requiredClaims: ['exp'],
        clockTolerance: CLOCK_SKEW,
        crit: {},
      });
      const usr = payload.usr as { issuer?: unknown; scopes?: unknown; claims?: unknown } | undefined;
      if (
        !usr ||
        typeof usr.issuer !== 'string' ||
        !Array.isArray(usr.scopes) ||
        typeof usr.claims !== 'object' ||
        usr.claims === null
      ) {
        return { ok: false, description: 'malformed user assertion' };
      }
      const user: MeshUser = {
        sub: payload.sub,
        issuer: usr.issuer,
        scopes: usr.scopes.filter((s): s is string => typeof s === 'string'),
        claims: usr.claims as JWTPayload,
      };
      this.#users.set(`${self} ${token}`, user, payload.exp! * 1000);
      return { ok: true, user };
    } catch (e) {
      if (e instanceof KeysUnavailable) throw e;
      return { ok: false, description: 'invalid user assertion' };
    }
  }
}

/** The user an edge token carries, as the gateway made it from the verified token (auth/verify.ts). */
function edgeUser(usr: unknown): MeshUser | undefined {
  if (typeof usr !== 'object' || usr === null) return undefined;
  const { issuer, claims } = usr as { issuer?: unknown; claims?: unknown };
  if (typeof issuer !== 'string' || typeof claims !== 'object' || claims === null || Array.isArray(claims))
    return undefined;
  const c = claims as JWTPayload;
  return { sub: typeof c.sub === 'string' ? c.sub : undefined, issuer, scopes: scopesOf(c), claims: c };
}

/**
 * A worker's identity machinery for one identity config: its keys, the tokens it has minted and
 * the ones it has verified. Kept per isolate (MeshRuntime) while the identity section stays the
 * same, so applying a config that changes routes re-signs nothing.
 */
export class IdentityState {
  readonly keys: MeshKeys;
  readonly minter: IdentityMinter;
  readonly verifier: IdentityVerifier;
  #seal: { text: string; seal: KvSeal } | undefined;

  constructor(readonly spec: IdentitySpec) {
    this.keys = new MeshKeys(spec);
    this.minter = new IdentityMinter(this.keys, spec.tokenTtl);
    this.verifier = new IdentityVerifier(this.keys);
  }

  /**
   * A seal for what this worker caches in the shared KV namespace: an HMAC key derived from its
   * signing key, so only workers holding that key (the gateway's isolates) can make or check one.
   * Undefined without a signing key.
   */
  kvSeal(env: MeshBindings): KvSeal | undefined {
    const text = textOf(env, this.spec.signingKey.env);
    if (text === undefined) return undefined;
    if (this.#seal?.text !== text) {
      const key = crypto.subtle
        .digest('SHA-256', new TextEncoder().encode(`meshwork kv seal v1\n${text}`))
        .then((raw) => crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']));
      this.#seal = { text, seal: { mac: async (data) => hmacHex(await key, data) } };
    }
    return this.#seal.seal;
  }

  static fingerprint(spec: IdentitySpec): string {
    return fingerprint(spec);
  }
}
