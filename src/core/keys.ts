/**
 * Verification keys that end-user auth and service identity both use: an inline JWKS, a JWKS in
 * an env var / secret, or a shared HMAC secret (remote JWKS endpoints are auth/jwks-remote.ts).
 * Each is compiled once per isolate.
 */
import { createLocalJWKSet, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import { textOf, type MeshBindings } from './bindings.ts';

/** A key set inline, or the env var / secret that holds its JSON (config: JwksSource). */
export type JwksSource = { keys: Array<Record<string, unknown>> } | { env: string };

/**
 * Authenticates what a worker caches in the shared KV namespace, which every service can write:
 * a MAC with a key only this worker's deployment holds (derived from its signing key).
 */
export interface KvSeal {
  mac(text: string): Promise<string>;
}

/** What a key lookup may need from the current request's worker. */
export interface KeyIo {
  env: MeshBindings;
  /** Seals shared cache entries; without it the shared cache is neither read nor written. */
  seal?: KvSeal | undefined;
  /** Told of a shared cache entry that failed its seal (counted for /_mesh/health). */
  rejected?: ((what: string) => void) | undefined;
  /** Told of each fetch of a remote key set and whether it worked (counted for /_mesh/metrics). */
  fetched?: ((issuer: string, ok: boolean) => void) | undefined;
  /** Shared JWKS cache across isolates (the gateway's KV namespace), if bound. */
  kv?: KVNamespace | undefined;
  waitUntil(promise: Promise<unknown>): void;
}

export type KeyResolver = (header: JWSHeaderParameters, io: KeyIo) => Promise<CryptoKey | Uint8Array>;

/** The keys cannot be had (endpoint down past the stale window, secret missing): a 503, not a 401. */
export class KeysUnavailable extends Error {
  override name = 'KeysUnavailable';
}

type LocalSet = ReturnType<typeof createLocalJWKSet>;

export function parseJwks(text: string, what: string): JSONWebKeySet {
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch {
    throw new KeysUnavailable(`${what} is not valid JSON`);
  }
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as JSONWebKeySet).keys)) {
    throw new KeysUnavailable(`${what} is not a JSON Web Key Set ({ "keys": [...] })`);
  }
  // Encryption keys and private members have no place in a verification set.
  const keys = (jwks as JSONWebKeySet).keys
    .filter((k) => k.use !== 'enc')
    .map(({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, k: _k, ...pub }) => pub);
  return { keys };
}

/** Reads a JWKS from an env var once per distinct value (a redeploy may change it). */
function envJwks(name: string): KeyResolver {
  let cached: { text: string; set: LocalSet } | undefined;
  return async (header, io) => {
    const text = textOf(io.env, name);
    if (text === undefined) throw new KeysUnavailable(`env ${name} (JWKS) is not set`);
    if (cached?.text !== text) cached = { text, set: createLocalJWKSet(parseJwks(text, `env ${name}`)) };
    return await cached.set(header);
  };
}

export function jwksResolver(spec: JwksSource): KeyResolver {
  if ('env' in spec) return envJwks(spec.env);
  const set = createLocalJWKSet(parseJwks(JSON.stringify(spec), 'inline jwks'));
  return async (header) => await set(header);
}

export function secretResolver(envName: string): KeyResolver {
  let cached: { text: string; key: Uint8Array } | undefined;
  return async (_header, io) => {
    const text = textOf(io.env, envName);
    if (text === undefined) throw new KeysUnavailable(`env ${envName} (shared secret) is not set`);
    // RFC 7518 section 3.2: an HMAC key must be at least as long as the hash (256 bits for HS256).
    if (new TextEncoder().encode(text).length < 32)
      throw new KeysUnavailable(`env ${envName} (shared secret) is shorter than 32 bytes`);
    if (cached?.text !== text) cached = { text, key: new TextEncoder().encode(text) };
    return cached.key;
  };
}
