/**
 * Compiles a validated MeshConfig into the structures the request path uses: the router and,
 * per service, precomputed weighted pickers. Runs once per config per isolate.
 */
import type { ClaimRequirement } from '../auth/claims.ts';
import { DEFAULT_TOKEN_SOURCE } from '../auth/token.ts';
import { TokenVerifier } from '../auth/verify.ts';
import type { AuthSpec, MeshBundle, MeshConfig, RouteSpec, TokenSourceSpec } from '../config/schema.ts';
import { MeshKeys } from '../identity/keys.ts';
import { IdentityMinter, IdentityVerifier } from '../identity/tokens.ts';
import { DEFAULT_STORE_BINDING, Limiter } from '../ratelimit/limiter.ts';
import { compileLimit, type CompiledLimit } from '../ratelimit/policy.ts';
import { Router, type RouteMatch } from '../router/router.ts';
import { WeightedPicker } from '../router/weighted.ts';
import { CLIENT_FORWARDING, MESH_HEADER_PREFIX } from './headers.ts';

export type CompiledBackend =
  | { kind: 'binding'; service: string; version: string | undefined; label: string; binding: string }
  | { kind: 'url'; service: string; version: string | undefined; label: string; url: URL };

export interface CompiledPolicy {
  /** undefined: any authenticated mesh member may call. */
  allowCallers: ReadonlySet<string> | undefined;
  allowAnonymous: boolean;
  rateLimits: readonly CompiledLimit[];
}

export interface CompiledService {
  name: string;
  policy: CompiledPolicy;
  backends: readonly CompiledBackend[];
  /** Backends with their weights, as configured (the registry overlay starts from these). */
  weightedBackends: ReadonlyArray<{ item: CompiledBackend; weight: number }>;
  /** Split across all backends by their weights. */
  picker: WeightedPicker<CompiledBackend>;
  /** Split within one version (several backends may share a version). */
  byVersion: ReadonlyMap<string, WeightedPicker<CompiledBackend>>;
}

export interface BackendChoice {
  service: string;
  version?: string;
}

export interface CompiledRouteAuth {
  mode: 'required' | 'optional';
  /** Issuer names accepted; undefined = every configured issuer. */
  issuers: ReadonlySet<string> | undefined;
  scopes: readonly string[];
  claims: readonly ClaimRequirement[];
  token: TokenSourceSpec;
  forwardToken: boolean;
}

export interface CompiledRoute {
  name: string;
  /** Where matching traffic goes; a single entry unless the route splits. */
  targets: WeightedPicker<BackendChoice>;
  rewrite?: { pathPrefix: string } | { path: string };
  auth?: CompiledRouteAuth;
  rateLimits: readonly CompiledLimit[];
}

export interface CompiledIdentity {
  keys: MeshKeys;
  minter: IdentityMinter;
  verifier: IdentityVerifier;
}

export interface CompiledMesh {
  /** Content hash of the config; identifies what is serving. */
  version: string;
  services: ReadonlyMap<string, CompiledService>;
  router: Router<CompiledRoute>;
  /** End-user token verification, with its caches (one per isolate and config). */
  auth: TokenVerifier;
  /** Verified claims sent to backends: [claim, header]; "scopes" is the granted scopes. */
  claimHeaders: ReadonlyArray<readonly [string, string]>;
  /** Claim header names outside x-mesh-*: stripped from client requests like x-mesh-* are. */
  extraStrippedHeaders: ReadonlySet<string>;
  /** Everything the gateway drops from a client request besides hop-by-hop and x-mesh-* headers. */
  gatewayDropped: ReadonlySet<string>;
  identity: CompiledIdentity;
  /** Rate-limit client with this isolate's leases. */
  limiter: Limiter;
  /** Registry and control-plane settings of this config. */
  registry: NonNullable<MeshConfig['registry']>;
  /** The config as applied (for the admin API's checks). */
  config: MeshConfig;
}

export type { MeshBundle } from '../config/schema.ts';

type Limits = ReadonlyMap<string, CompiledLimit>;

function limitsFor(names: readonly string[] | undefined, limits: Limits): CompiledLimit[] {
  return (names ?? []).map((n) => limits.get(n)!);
}

function compileService(name: string, spec: MeshConfig['services'][string], limits: Limits): CompiledService {
  const weighted = spec.backends.map((b) => {
    const label = b.version ? `${name}@${b.version}` : name;
    const backend: CompiledBackend = b.binding
      ? { kind: 'binding', service: name, version: b.version, label, binding: b.binding }
      : { kind: 'url', service: name, version: b.version, label, url: new URL(b.url!) };
    return { item: backend, weight: b.weight ?? 1 };
  });
  return {
    name,
    policy: {
      allowCallers: spec.policy?.allowCallers ? new Set(spec.policy.allowCallers) : undefined,
      allowAnonymous: spec.policy?.allowAnonymous ?? false,
      rateLimits: limitsFor(spec.policy?.rateLimits, limits),
    },
    weightedBackends: weighted,
    ...buildPickers(weighted),
  };
}

/** The weighted pickers of a service: over all its backends, and within each version. */
export function buildPickers(
  weighted: ReadonlyArray<{ item: CompiledBackend; weight: number }>,
): Pick<CompiledService, 'backends' | 'picker' | 'byVersion'> {
  const versions = new Map<string, Array<{ item: CompiledBackend; weight: number }>>();
  for (const w of weighted) {
    if (w.item.version === undefined) continue;
    versions.set(w.item.version, [...(versions.get(w.item.version) ?? []), w]);
  }
  // Pinning a version is an explicit choice, so a version whose weights are all 0 (dark
  // launched: no default traffic) is still reachable when pinned, split evenly.
  const pinned = (list: Array<{ item: CompiledBackend; weight: number }>) =>
    list.every((w) => w.weight === 0) ? list.map((w) => ({ item: w.item, weight: 1 })) : list;
  return {
    backends: weighted.map((w) => w.item),
    picker: new WeightedPicker(weighted),
    byVersion: new Map([...versions].map(([v, list]) => [v, new WeightedPicker(pinned(list))])),
  };
}

function compileRouteAuth(spec: RouteSpec, auth: AuthSpec | undefined): CompiledRouteAuth | undefined {
  const a = spec.auth;
  if (!a || a.mode === 'off') return undefined;
  return {
    mode: a.mode ?? 'required',
    issuers: a.issuers ? new Set(a.issuers) : undefined,
    scopes: a.scopes ?? [],
    claims: Object.entries(a.claims ?? {}).map(([name, v]) => ({
      name,
      anyOf: new Set((Array.isArray(v) ? v : [v]).map(String)),
    })),
    token: a.token ?? auth?.token ?? DEFAULT_TOKEN_SOURCE,
    forwardToken: a.forwardToken ?? true,
  };
}

function compileRoute(spec: RouteSpec, auth: AuthSpec | undefined, limits: Limits): CompiledRoute {
  const refs = spec.backendRefs
    ? spec.backendRefs.map((r) => ({
        item: { service: r.service, ...(r.version ? { version: r.version } : {}) },
        weight: r.weight ?? 1,
      }))
    : [{ item: { service: spec.service!, ...(spec.version ? { version: spec.version } : {}) }, weight: 1 }];
  const route: CompiledRoute = {
    name: spec.name,
    targets: new WeightedPicker(refs),
    rateLimits: limitsFor(spec.rateLimits, limits),
  };
  if (spec.rewrite?.pathPrefix !== undefined) route.rewrite = { pathPrefix: spec.rewrite.pathPrefix };
  else if (spec.rewrite?.path !== undefined) route.rewrite = { path: spec.rewrite.path };
  const routeAuth = compileRouteAuth(spec, auth);
  if (routeAuth) route.auth = routeAuth;
  return route;
}

export const DEFAULT_CLAIM_HEADERS: Record<string, string> = {
  sub: 'x-mesh-sub',
  scopes: 'x-mesh-scopes',
  iss: 'x-mesh-issuer',
};

export function compileMesh(bundle: MeshBundle): CompiledMesh {
  const limits = new Map(Object.entries(bundle.config.rateLimits ?? {}).map(([n, s]) => [n, compileLimit(n, s)]));
  const services = new Map(Object.entries(bundle.config.services).map(([n, s]) => [n, compileService(n, s, limits)]));
  const router = new Router(
    bundle.config.routes.map((r) => ({
      route: compileRoute(r, bundle.config.auth, limits),
      ...(r.hostnames ? { hostnames: r.hostnames } : {}),
      ...(r.matches ? { matches: r.matches } : {}),
    })),
  );
  const claimHeaders = Object.entries(bundle.config.auth?.claimHeaders ?? DEFAULT_CLAIM_HEADERS).map(
    ([claim, header]) => [claim, header.toLowerCase()] as const,
  );
  const keys = new MeshKeys(bundle.config.identity);
  const extra = new Set(claimHeaders.map(([, h]) => h).filter((h) => !h.startsWith(MESH_HEADER_PREFIX)));
  return {
    version: bundle.version,
    services,
    router,
    auth: new TokenVerifier(bundle.config.auth),
    claimHeaders,
    extraStrippedHeaders: extra,
    gatewayDropped: new Set([...CLIENT_FORWARDING, ...extra]),
    identity: {
      keys,
      minter: new IdentityMinter(keys, bundle.config.identity?.tokenTtl ?? 60),
      verifier: new IdentityVerifier(keys),
    },
    limiter: new Limiter(bundle.config.rateLimitStore?.binding ?? DEFAULT_STORE_BINDING),
    registry: bundle.config.registry ?? {},
    config: bundle.config,
  };
}

/** Picks a concrete backend for a service (optionally one version); undefined = none available. */
export function pickBackend(
  mesh: CompiledMesh,
  choice: BackendChoice,
  random?: () => number,
): CompiledBackend | undefined {
  const svc = mesh.services.get(choice.service);
  if (!svc) return undefined;
  const picker = choice.version === undefined ? svc.picker : svc.byVersion.get(choice.version);
  return picker?.pick(random);
}

/** The path to send upstream after the route's rewrite. */
export function rewritePath(hit: RouteMatch<CompiledRoute>, path: string): string {
  const rw = hit.route.rewrite;
  if (!rw) return path;
  if ('path' in rw) return rw.path;
  const prefix = hit.match.path;
  const rest = prefix === '/' ? path : path.slice(prefix.length);
  const base = rw.pathPrefix.length > 1 && rw.pathPrefix.endsWith('/') ? rw.pathPrefix.slice(0, -1) : rw.pathPrefix;
  if (rest === '' || rest === '/') return rest === '/' && base !== '/' ? `${base}/` : base;
  return base === '/' ? rest : base + rest;
}
