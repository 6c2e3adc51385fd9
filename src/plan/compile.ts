/**
 * Compiles a validated config into the plan the request path runs on: the router, each route's
 * targets and policies, each service's endpoints and outbound stack. Runs once per config per
 * isolate; the plan never changes after (per-isolate state lives in MeshRuntime).
 */
import type { ClaimRequirement } from '../auth/claims.ts';
import type { UserAudience } from '../identity/tokens.ts';
import { Issuers } from '../auth/verify.ts';
import { CLIENT_FORWARDING, MESH_HEADER_PREFIX } from '../core/headers.ts';
import { normalizeBundle } from '../config/bundle.ts';
import type {
  FallbackSpec,
  MeshBundle,
  MeshConfig,
  MirrorSpec,
  RedirectSpec,
  RouteSpec,
  ServiceSpec,
  TokenSourceSpec,
} from '../config/schema.ts';
import { compileLimit, type CompiledLimit } from '../ratelimit/policy.ts';
import { Router, type RouteMatch } from '../router/router.ts';
import { compileCors, type CorsPlan } from './cors.ts';
import type { TrafficPlan, TrafficService } from '../traffic/call.ts';
import { configEndpoints, endpointSet, type EndpointSet } from '../traffic/endpoints.ts';
import { compileObservability } from '../telemetry/plan.ts';
import { serviceStack } from '../traffic/stack.ts';
import {
  compileTraffic,
  headerOps,
  parseSource,
  routePolicy,
  type HashOn,
  type HeaderOps,
  type RoutePolicy,
} from '../traffic/policy.ts';
import { WeightedPicker } from '../traffic/weighted.ts';

export interface ServicePolicy {
  /** undefined: any authenticated mesh member may call. */
  allowCallers: ReadonlySet<string> | undefined;
  allowAnonymous: boolean;
  rateLimits: readonly CompiledLimit[];
}

export interface ServicePlan extends TrafficService {
  readonly policy: ServicePolicy;
  /** The endpoints the config lists (the registry overlay starts from these). */
  readonly configured: EndpointSet;
}

/** Where a route sends a request: a service, optionally one version of it. */
export interface Target {
  service: string;
  version?: string;
  /** A backendRef with its own header edits: the route's edge settings with both sets of edits. */
  edge?: RoutePlan['edge'];
  /** While compiling only. */
  requestOps?: HeaderOps;
  responseHeaders?: HeaderOps;
}

export interface RouteAuthPlan {
  mode: 'required' | 'optional';
  /** Issuer names accepted; undefined = every configured issuer. */
  issuers: ReadonlySet<string> | undefined;
  scopes: readonly string[];
  claims: readonly ClaimRequirement[];
  token: TokenSourceSpec;
  forwardToken: boolean;
}

export interface RoutePlan {
  name: string;
  /** Where matching traffic goes; a single entry unless the route splits. */
  targets: WeightedPicker<Target>;
  /** The service every target names, if they all name one (metrics of requests refused before a target is chosen). */
  service: string | undefined;
  rewrite?: { pathPrefix: string } | { path: string };
  auth?: RouteAuthPlan;
  rateLimits: readonly CompiledLimit[];
  /** What the call path needs of the route: its name, whether the token stays behind, its policy and request edits. */
  edge: {
    name: string;
    dropToken: TokenSourceSpec | undefined;
    policy: RoutePolicy | undefined;
    requestHeaders: HeaderOps | undefined;
    hostname: string | undefined;
  };
  responseHeaders?: HeaderOps;
  redirect?: RedirectSpec;
  /** Where a sticky split's value comes from. */
  sticky?: HashOn;
  fallback?: FallbackSpec;
  cors?: CorsPlan;
  mirror?: MirrorSpec;
  fault?: { delay?: { percent: number; ms: number }; abort?: { percent: number; status: number } };
}

/** How the gateway reads the client's address from a request (network.clientIp). */
export interface ClientIpReader {
  /** The configured source is the default, CF-Connecting-IP (which `npm run dev` lets clients send). */
  readonly platformDefault: boolean;
  read(headers: Headers): string | null;
}

function clientIpReader(source: MeshConfig['network']['clientIp']): ClientIpReader {
  if (source === 'none') return { platformDefault: false, read: () => null };
  if ('header' in source) {
    const name = source.header.toLowerCase();
    return { platformDefault: name === 'cf-connecting-ip', read: (h) => h.get(name)?.trim() || null };
  }
  const n = source.forwardedFor;
  return {
    platformDefault: false,
    read: (h) => {
      const list = (h.get('x-forwarded-for') ?? '').split(',');
      return list.length >= n ? list[list.length - n]!.trim() || null : null;
    },
  };
}

export interface Plan extends TrafficPlan {
  /** Content hash of the config; identifies what is serving. */
  readonly version: string;
  /** The config as applied (the admin API checks against it). */
  readonly config: MeshConfig;
  readonly services: ReadonlyMap<string, ServicePlan>;
  readonly router: Router<RoutePlan>;
  /** End-user token issuers (verification state is the runtime's). */
  readonly auth: Issuers;
  readonly clientIp: ClientIpReader;
  /** admin.audience when admin tokens exist (admin.issuers set): tokens for it are never forwarded. */
  readonly adminAudience: string | undefined;
}

type Limits = ReadonlyMap<string, CompiledLimit>;

function limitsFor(names: readonly string[] | undefined, limits: Limits): CompiledLimit[] {
  return (names ?? []).map((n) => limits.get(n)!);
}

function compileService(name: string, spec: ServiceSpec, limits: Limits): ServicePlan {
  const configured = endpointSet(configEndpoints(name, spec.backends));
  return {
    name,
    policy: {
      allowCallers: spec.policy.allowCallers ? new Set(spec.policy.allowCallers) : undefined,
      allowAnonymous: spec.policy.allowAnonymous,
      rateLimits: limitsFor(spec.policy.rateLimits, limits),
    },
    configured,
    endpoints: configured,
    traffic: compileTraffic(spec.traffic),
    stack: serviceStack(spec),
  };
}

function compileRouteAuth(spec: RouteSpec, config: MeshConfig): RouteAuthPlan | undefined {
  const a = spec.auth;
  if (!a || a.mode === 'off') return undefined;
  return {
    mode: a.mode,
    issuers: a.issuers ? new Set(a.issuers) : undefined,
    scopes: a.scopes ?? [],
    claims: Object.entries(a.claims ?? {}).map(([name, v]) => ({
      name,
      anyOf: new Set((Array.isArray(v) ? v : [v]).map(String)),
    })),
    // Unset on the route: the mesh-wide auth.token.
    token: a.token ?? config.auth.token,
    forwardToken: a.forwardToken,
  };
}

function compileRoute(spec: RouteSpec, config: MeshConfig, limits: Limits): RoutePlan {
  const requestOps = headerOps(spec.requestHeaders);
  const responseOps = headerOps(spec.responseHeaders);
  const refs = spec.backendRefs
    ? spec.backendRefs.map((r) => {
        const item: Target = { service: r.service, ...(r.version ? { version: r.version } : {}) };
        const ownRequest = headerOps(r.requestHeaders);
        const ownResponse = headerOps(r.responseHeaders);
        if (ownRequest) item.requestOps = joinOps(requestOps, ownRequest);
        if (ownResponse) item.responseHeaders = joinOps(responseOps, ownResponse);
        return { item, weight: r.weight ?? 1 };
      })
    : spec.service !== undefined
      ? [{ item: { service: spec.service, ...(spec.version ? { version: spec.version } : {}) }, weight: 1 }]
      : [];
  const auth = compileRouteAuth(spec, config);
  const route: RoutePlan = {
    name: spec.name,
    targets: new WeightedPicker(refs),
    service:
      refs.length > 0 && refs.every((r) => r.item.service === refs[0]!.item.service)
        ? refs[0]!.item.service
        : undefined,
    rateLimits: limitsFor(spec.rateLimits, limits),
    edge: {
      name: spec.name,
      dropToken: auth && !auth.forwardToken ? auth.token : undefined,
      policy: routePolicy(spec.timeouts, spec.retry),
      requestHeaders: requestOps,
      hostname: spec.rewrite?.hostname,
    },
  };
  if (responseOps) route.responseHeaders = responseOps;
  // A backendRef's own request edits ride on a copy of the route's edge settings.
  for (const t of refs) {
    const ops = t.item.requestOps;
    if (ops) {
      t.item.edge = { ...route.edge, requestHeaders: ops };
      delete t.item.requestOps;
    }
  }
  if (spec.redirect) route.redirect = spec.redirect;
  if (spec.sticky) route.sticky = parseSource(spec.sticky);
  if (spec.fallback) route.fallback = spec.fallback;
  if (spec.cors) route.cors = compileCors(spec.cors);
  if (spec.mirror) route.mirror = spec.mirror;
  if (spec.fault) {
    route.fault = {
      ...(spec.fault.delay
        ? { delay: { percent: spec.fault.delay.percent, ms: Math.round(spec.fault.delay.fixedDelay * 1000) } }
        : {}),
      ...(spec.fault.abort ? { abort: spec.fault.abort } : {}),
    };
  }
  if (spec.rewrite?.pathPrefix !== undefined) route.rewrite = { pathPrefix: spec.rewrite.pathPrefix };
  else if (spec.rewrite?.path !== undefined) route.rewrite = { path: spec.rewrite.path };
  if (auth) route.auth = auth;
  return route;
}

/**
 * For each service, who may receive a user assertion minted for a call to it: itself and every
 * service it can reach by calls the services' allowCallers permit (absent allowCallers: any
 * member). An assertion that leaks cannot be presented anywhere else.
 */
function userAudiences(config: MeshConfig): Map<string, UserAudience> {
  const names = Object.keys(config.services).sort();
  const callees = (caller: string) =>
    names.filter((n) => {
      const allowed = config.services[n]!.policy.allowCallers;
      return allowed === undefined || allowed.includes(caller);
    });
  const out = new Map<string, UserAudience>();
  for (const entry of names) {
    const seen = new Set([entry]);
    const queue = [entry];
    while (queue.length) {
      for (const next of callees(queue.shift()!)) {
        if (seen.has(next)) continue;
        seen.add(next);
        queue.push(next);
      }
    }
    const services = [...seen].sort();
    out.set(entry, { services, key: services.join(',') });
  }
  return out;
}

export function compilePlan(given: MeshBundle): Plan {
  const { version, config } = normalizeBundle(given);
  const { binding: store, partitions } = config.rateLimitStore;
  const limits = new Map(Object.entries(config.rateLimits).map(([n, s]) => [n, compileLimit(n, s, store, partitions)]));
  const services = new Map(Object.entries(config.services).map(([n, s]) => [n, compileService(n, s, limits)]));
  const router = new Router(
    config.routes.map((r) => ({
      route: compileRoute(r, config, limits),
      ...(r.hostnames ? { hostnames: r.hostnames } : {}),
      ...(r.matches ? { matches: r.matches } : {}),
    })),
  );
  const claimHeaders = Object.entries(config.auth.claimHeaders).map(
    ([claim, header]) => [claim, header.toLowerCase()] as const,
  );
  const claimHeaderNames = new Set(claimHeaders.map(([, h]) => h).filter((h) => !h.startsWith(MESH_HEADER_PREFIX)));
  return {
    version,
    config,
    services,
    router,
    auth: new Issuers(config.auth),
    clientIp: clientIpReader(config.network.clientIp),
    adminAudience: config.admin.issuers ? config.admin.audience : undefined,
    observability: compileObservability(config.observability),
    identity: config.identity,
    claimHeaders,
    claimHeaderNames,
    userAudiences: userAudiences(config),
    edgeDropped: new Set([...CLIENT_FORWARDING, ...claimHeaderNames]),
  };
}

/** The route's edits, then a backendRef's. */
function joinOps(first: HeaderOps | undefined, then: HeaderOps): HeaderOps {
  if (!first) return then;
  return {
    remove: [...first.remove, ...then.remove],
    set: [...first.set, ...then.set],
    add: [...first.add, ...then.add],
  };
}

/** The path to send upstream after the route's rewrite. */
export function rewritePath(hit: RouteMatch<RoutePlan>, path: string): string {
  const rw = hit.route.rewrite;
  if (!rw) return path;
  if ('path' in rw) return rw.path;
  const prefix = hit.match.path;
  const rest = prefix === '/' ? path : path.slice(prefix.length);
  const base = rw.pathPrefix.length > 1 && rw.pathPrefix.endsWith('/') ? rw.pathPrefix.slice(0, -1) : rw.pathPrefix;
  if (rest === '' || rest === '/') return rest === '/' && base !== '/' ? `${base}/` : base;
  return base === '/' ? rest : base + rest;
}
