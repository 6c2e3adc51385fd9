/**
 * The worker env as the mesh sees it, and typed getters for it. A binding the mesh needs may be
 * missing (not declared in the worker's wrangler config), or be something else than expected
 * (a plain var where a KV namespace should be): every getter checks the shape once and answers
 * undefined instead of letting a cast fail later, deep in a request.
 */

/** The bindings and secrets meshwork reads. Service bindings named in routes/ are looked up by name. */
export interface MeshBindings {
  /** Registry snapshots and shared JWKS cache (all workers). */
  MESH_KV?: KVNamespace;
  /** Gateway: the MeshRegistry Durable Object namespace. Services: the RegistryHeartbeat entrypoint. */
  MESH_REGISTRY?: unknown;
  /** The RateLimiter Durable Object namespace (default binding name of rateLimitStore). */
  MESH_RATE_LIMITER?: unknown;
  /** Gateway: the control-plane API's bearer secret. */
  MESH_ADMIN_TOKEN?: string;
  /** This worker's private mesh key (default name of identity.signingKey). */
  MESH_SIGNING_KEY?: string;
  /** Every member's public keys as a JWKS (default name of identity.publicKeys). */
  MESH_PUBLIC_KEYS?: string;
  [name: string]: unknown;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** The KV namespace bound as MESH_KV, if it is one. */
export function kvOf(env: MeshBindings): KVNamespace | undefined {
  const kv = env.MESH_KV;
  return isObject(kv) && typeof kv.get === 'function' && typeof kv.put === 'function' ? kv : undefined;
}

/** A service binding (or anything with fetch) by name. */
export function fetcherOf(env: MeshBindings, name: string): Fetcher | undefined {
  const f = env[name];
  return isObject(f) && typeof f.fetch === 'function' ? (f as unknown as Fetcher) : undefined;
}

/**
 * A Durable Object namespace by name. A service binding answers every property with an RPC
 * method, so "has idFromName" alone would take one for a namespace: a namespace has no fetch.
 */
export function namespaceOf<T extends Rpc.DurableObjectBranded | undefined = undefined>(
  env: MeshBindings,
  name: string,
): DurableObjectNamespace<T> | undefined {
  const ns = env[name];
  return isObject(ns) &&
    typeof ns.fetch !== 'function' &&
    typeof ns.idFromName === 'function' &&
    typeof ns.get === 'function'
    ? (ns as unknown as DurableObjectNamespace<T>)
    : undefined;
}

/** An RPC binding (a named entrypoint of another worker) with the method the caller needs. */
export function entrypointOf<T extends Rpc.WorkerEntrypointBranded>(
  env: MeshBindings,
  name: string,
  method: string,
): Service<T> | undefined {
  const s = env[name];
  return isObject(s) && typeof s[method] === 'function' ? (s as unknown as Service<T>) : undefined;
}

/** A secret or var holding text; undefined when unset or empty. */
export function textOf(env: MeshBindings, name: string): string | undefined {
  const v = env[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}
