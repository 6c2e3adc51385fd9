/**
 * A remote JWKS done properly (where Istio, Kong and hono/jwk fall short):
 *  - keys cached per isolate and shared across isolates through KV, for as long as the
 *    endpoint's Cache-Control max-age says (clamped to [minTtl, maxTtl]);
 *  - an unknown kid triggers one refetch, at most once per cooldown, so forged kids cannot
 *    hammer the identity provider; concurrent requests share one fetch;
 *  - if the endpoint fails, the last good keys keep working for `staleFor`, then requests get
 *    a 503 (never a fake or empty key set);
 *  - only the configured URI is fetched (no redirects, never a jku/x5u from a token).
 */
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import { sameSecret } from '../core/hash.ts';
import { KeysUnavailable, parseJwks, type KeyIo, type KvSeal } from '../core/keys.ts';
import { logEvent } from '../core/log.ts';

export interface RemoteJwksOptions {
  /** Seconds. */
  minTtl: number;
  maxTtl: number;
  defaultTtl: number;
  staleFor: number;
  refetchCooldown: number;
  /** Max wait for the endpoint, ms. */
  timeoutMs: number;
}

export const DEFAULT_REMOTE_JWKS: RemoteJwksOptions = {
  minTtl: 60,
  maxTtl: 86_400,
  defaultTtl: 600,
  staleFor: 3600,
  refetchCooldown: 30,
  timeoutMs: 5000,
};

interface KeyState {
  set: ReturnType<typeof createLocalJWKSet>;
  fetchedAt: number;
  expiresAt: number;
}

interface SharedEntry {
  jwks: JSONWebKeySet;
  fetchedAt: number;
  expiresAt: number;
}

const MAX_JWKS_BYTES = 512 * 1024;

export function maxAgeSeconds(cacheControl: string | null): number | undefined {
  if (!cacheControl) return undefined;
  if (/(^|,)\s*(no-store|no-cache)\s*(,|$)/i.test(cacheControl)) return 0;
  const m = /(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*"?(\d+)"?/i.exec(cacheControl);
  return m ? Number(m[1]) : undefined;
}

export class RemoteJwks {
  #state: KeyState | undefined;
  #inflight: Promise<void> | undefined;
  #lastAttempt = Number.NEGATIVE_INFINITY;
  /** Whether the last attempt got no keys (the IdP is failing). */
  #lastFailed = false;
  /** IdP requests made by this isolate (exposed for tests and health). */
  fetches = 0;

  constructor(
    readonly uri: string,
    readonly issuerName: string,
    readonly options: RemoteJwksOptions = DEFAULT_REMOTE_JWKS,
  ) {}

  get #kvKey(): string {
    return `jwks:v1:${this.uri}`;
  }

  async resolve(header: JWSHeaderParameters, io: KeyIo): Promise<CryptoKey> {
    const staleMs = this.options.staleFor * 1000;
    if (!this.#state || Date.now() >= this.#state.expiresAt) await this.#refresh(io, false);
    const state = this.#state;
    if (!state) throw new KeysUnavailable(`JWKS for issuer "${this.issuerName}" could not be fetched`);
    if (Date.now() >= state.expiresAt + staleMs) {
      throw new KeysUnavailable(`JWKS for issuer "${this.issuerName}" expired and could not be refreshed`);
    }
    try {
      return await state.set(header);
    } catch (e) {
      if (!(e instanceof errors.JWKSNoMatchingKey)) throw e;
      // Unknown kid: maybe the IdP rotated. One refetch, unless one happened within the cooldown.
      await this.#refresh(io, true);
      if (this.#state === state) throw e;
      return await this.#state!.set(header);
    }
  }

  #refresh(io: KeyIo, unknownKid: boolean): Promise<void> {
    if (this.#inflight) return this.#inflight;
    const cooldownMs = this.options.refetchCooldown * 1000;
    // Within the cooldown nothing is fetched: not for unknown kids, not while the IdP is down.
    // Keys that expired after a good fetch are refreshed at once: their TTL is the IdP's to set.
    if ((unknownKid || this.#lastFailed) && Date.now() - this.#lastAttempt < cooldownMs) return Promise.resolve();
    this.#lastAttempt = Date.now();
    this.#inflight = this.#doRefresh(io, unknownKid, cooldownMs).finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #doRefresh(io: KeyIo, unknownKid: boolean, cooldownMs: number): Promise<void> {
    const mine = this.#state?.fetchedAt ?? 0;
    const { kv, seal } = io;
    if (kv && seal) {
      const shared = await this.#readShared(kv, seal, io);
      if (shared && shared.fetchedAt > mine) {
        const now = Date.now();
        // Another isolate fetched: take its keys if still fresh, or, for an unknown kid, if it
        // fetched so recently that asking the IdP again would break the cooldown.
        if (now < shared.expiresAt || (unknownKid && now - shared.fetchedAt < cooldownMs)) {
          this.#install(shared);
          return;
        }
      }
    }
    try {
      this.fetches++;
      // workerd rejects redirect: 'error'; with 'manual' a 3xx is not ok, so it fails below.
      const res = await fetch(this.uri, {
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
        headers: { accept: 'application/jwk-set+json, application/json' },
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const text = await res.text();
      if (text.length > MAX_JWKS_BYTES) throw new Error('JWKS larger than 512 KiB');
      const jwks = parseJwks(text, `JWKS from ${this.uri}`);
      const o = this.options;
      const ttl = Math.min(
        o.maxTtl,
        Math.max(o.minTtl, maxAgeSeconds(res.headers.get('cache-control')) ?? o.defaultTtl),
      );
      const now = Date.now();
      const entry: SharedEntry = { jwks, fetchedAt: now, expiresAt: now + ttl * 1000 };
      this.#install(entry);
      io.fetched?.(this.issuerName, true);
      if (kv && seal) {
        const text = JSON.stringify(entry);
        const put = seal
          .mac(`${this.uri}\n${text}`)
          .then((mac) =>
            kv.put(this.#kvKey, text, { expirationTtl: Math.max(60, Math.ceil(ttl + o.staleFor)), metadata: { mac } }),
          );
        io.waitUntil(
          put.catch((e: unknown) =>
            logEvent('warn', 'jwks kv write failed', { issuer: this.issuerName, error: String(e) }),
          ),
        );
      }
    } catch (e) {
      this.#lastFailed = true;
      io.fetched?.(this.issuerName, false);
      logEvent('warn', 'jwks fetch failed', {
        issuer: this.issuerName,
        uri: this.uri,
        error: String((e as Error)?.message ?? e),
      });
    }
  }

  /**
   * Another gateway isolate's keys from KV, if they carry its seal. An entry without one (written
   * by anything else that can write the namespace) is never used: it could name any keys.
   */
  async #readShared(kv: KVNamespace, seal: KvSeal, io: KeyIo): Promise<SharedEntry | null> {
    const stored = await kv.getWithMetadata<{ mac?: unknown }>(this.#kvKey, 'text').catch(() => null);
    if (!stored?.value) return null;
    const expected = await seal.mac(`${this.uri}\n${stored.value}`);
    const mac = stored.metadata?.mac;
    if (typeof mac !== 'string' || !(await sameSecret(mac, expected))) {
      io.rejected?.('jwks');
      logEvent('error', 'shared JWKS cache entry rejected (not sealed by a gateway)', { issuer: this.issuerName });
      return null;
    }
    try {
      return JSON.parse(stored.value) as SharedEntry;
    } catch {
      return null;
    }
  }

  #install(entry: SharedEntry): void {
    this.#lastFailed = false;
    this.#state = { set: createLocalJWKSet(entry.jwks), fetchedAt: entry.fetchedAt, expiresAt: entry.expiresAt };
  }
}
