/**
 * Traffic settings compiled once per config: a service's balancing, budget, outlier detection
 * and per-endpoint cap, and the timeouts and retries of a call (a route's own, or its service's).
 */
import { cookieValue } from '../auth/token.ts';
import type { HeaderModifierSpec, RetrySpec, TimeoutsSpec, TrafficSpec } from '../config/schema.ts';
import { hash32 } from '../resilience/balance/ring.ts';
import { DEFAULT_BACKOFF_MS, type BudgetPolicy } from '../resilience/retry.ts';
import type { OutlierPolicy } from '../resilience/outlier.ts';

export interface CompiledRetry {
  readonly attempts: number;
  readonly codes: ReadonlySet<number>;
  readonly onConnectFailure: boolean;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  readonly unsafeMethods: boolean;
  readonly maxBodyBytes: number;
}

/** What bounds and repeats one call. 0 ms: no timeout. */
export interface CallPolicy {
  readonly requestMs: number;
  readonly backendMs: number;
  readonly retry: CompiledRetry | undefined;
}

export type HashOn = { kind: 'header' | 'cookie' | 'claim'; name: string };

export interface ServiceTraffic {
  readonly balancer: 'RoundRobin' | 'LeastRequest' | 'Random' | 'ConsistentHash';
  readonly hashOn: HashOn | undefined;
  readonly budget: BudgetPolicy;
  readonly outlier: OutlierPolicy | undefined;
  readonly maxPerEndpoint: number | undefined;
  /** For calls that do not bring their own (east-west, and routes without their own). */
  readonly defaults: CallPolicy;
}

export const NO_POLICY: CallPolicy = { requestMs: 0, backendMs: 0, retry: undefined };

const ms = (seconds: number | undefined) => Math.round((seconds ?? 0) * 1000);

function compileRetry(spec: RetrySpec | undefined): CompiledRetry | undefined {
  if (!spec || spec.attempts === 0) return undefined;
  const backoffMs = spec.backoff === undefined ? DEFAULT_BACKOFF_MS : ms(spec.backoff);
  return {
    attempts: spec.attempts,
    codes: new Set(spec.codes),
    onConnectFailure: spec.onConnectFailure,
    backoffMs,
    maxBackoffMs: spec.maxBackoff === undefined ? backoffMs * 10 : ms(spec.maxBackoff),
    unsafeMethods: spec.unsafeMethods,
    maxBodyBytes: spec.maxBodyBytes,
  };
}

/** A route's own fields (a key present = set by the route), merged onto its service's at call time. */
export type RoutePolicy = Partial<CallPolicy>;

export function routePolicy(timeouts: TimeoutsSpec | undefined, retry: RetrySpec | undefined): RoutePolicy | undefined {
  if (!timeouts && !retry) return undefined;
  const out: { -readonly [K in keyof CallPolicy]?: CallPolicy[K] } = {};
  if (timeouts) {
    out.requestMs = ms(timeouts.request);
    out.backendMs = ms(timeouts.backendRequest);
  }
  if (retry) out.retry = compileRetry(retry);
  return out;
}

/**
 * A call's policy: the route's fields where it sets them, else the service's. Timeouts and
 * retry are taken as wholes (a route's `timeouts` replaces the service's, as a more specific
 * Gateway API policy does), so what a route says is all that applies to it.
 */
export function callPolicy(
  timeouts: TimeoutsSpec | undefined,
  retry: RetrySpec | undefined,
  fallback: CallPolicy = NO_POLICY,
): CallPolicy {
  return {
    requestMs: timeouts ? ms(timeouts.request) : fallback.requestMs,
    backendMs: timeouts ? ms(timeouts.backendRequest) : fallback.backendMs,
    retry: retry ? compileRetry(retry) : fallback.retry,
  };
}

export function compileTraffic(spec: TrafficSpec): ServiceTraffic {
  const lb = spec.loadBalancer;
  const hashOn = lb.hashOn ? parseSource(lb.hashOn) : undefined;
  const o = spec.outlierDetection;
  return {
    balancer: lb.policy,
    hashOn,
    budget: {
      ratio: spec.retryBudget.ratio,
      minPerSecond: spec.retryBudget.minPerSecond,
      ttlMs: ms(spec.retryBudget.ttl),
    },
    outlier: o && {
      consecutive5xx: o.consecutive5xx,
      intervalMs: ms(o.interval),
      baseEjectionMs: ms(o.baseEjectionTime),
      maxEjectionMs: ms(o.maxEjectionTime),
      maxEjectionPercent: o.maxEjectionPercent,
    },
    maxPerEndpoint: spec.maxRequestsPerEndpoint,
    defaults: callPolicy(spec.timeouts, spec.retry),
  };
}

/** A route's header edits, lowercased once: applied remove, set, add (Gateway API's order). */
export interface HeaderOps {
  readonly remove: readonly string[];
  readonly set: ReadonlyArray<readonly [string, string]>;
  readonly add: ReadonlyArray<readonly [string, string]>;
}

export function headerOps(spec: HeaderModifierSpec | undefined): HeaderOps | undefined {
  if (!spec) return undefined;
  return {
    remove: (spec.remove ?? []).map((n) => n.toLowerCase()),
    set: (spec.set ?? []).map((h) => [h.name.toLowerCase(), h.value] as const),
    add: (spec.add ?? []).map((h) => [h.name.toLowerCase(), h.value] as const),
  };
}

export function applyHeaderOps(headers: Headers, ops: HeaderOps): void {
  for (const name of ops.remove) headers.delete(name);
  for (const [name, value] of ops.set) headers.set(name, value);
  for (const [name, value] of ops.add) headers.append(name, value);
}

/** The request value a `header:` / `cookie:` / `claim:` source names, or undefined. */
export function requestValue(
  on: HashOn,
  headers: Headers,
  claims: Readonly<Record<string, unknown>> | undefined,
): string | undefined {
  if (on.kind === 'claim') {
    const v = claims?.[on.name];
    return v === undefined || v === null ? undefined : typeof v === 'string' ? v : JSON.stringify(v);
  }
  const value = on.kind === 'header' ? headers.get(on.name) : cookieValue(headers.get('cookie'), on.name);
  return value ?? undefined;
}

export function parseSource(text: string): HashOn {
  const at = text.indexOf(':');
  const kind = text.slice(0, at) as HashOn['kind'];
  const name = text.slice(at + 1);
  // Header names are case-insensitive; cookie and claim names are not.
  return { kind, name: kind === 'header' ? name.toLowerCase() : name };
}

/** A value's fixed point in [0, 1): the same value picks the same share of a weighted split. */
export function unitOf(value: string): number {
  return hash32(`sticky:${value}`) / 2 ** 32;
}
