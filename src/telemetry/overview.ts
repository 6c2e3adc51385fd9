/**
 * What the dashboard and `meshwork top` show: the last minute of the mesh's traffic, as the
 * telemetry Durable Object aggregates it from every isolate. Served as JSON at
 * GET /_mesh/admin/telemetry (admin credential, or the dashboard's session cookie).
 */

/** Calls from one workload to one service over the window. */
export interface EdgeStats {
  /** "gateway" or the calling service's name (verified: a service cannot report as another). */
  source: string;
  /** The service called. */
  destination: string;
  /** Requests in the window. */
  requests: number;
  /** Of those, answered 5xx (by the backend or by the mesh). */
  errors: number;
  /** Answered 4xx. */
  clientErrors: number;
  /** Requests per second over the window. */
  rps: number;
  /** errors / requests, 0..1 (0 when there were none). */
  errorRate: number;
  /** Latency quantiles estimated from the histogram (as PromQL's histogram_quantile does); null without requests. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Kiali's colours: "healthy" (< 0.1% errors), "degraded" (< 20%), "failure", or "idle" (no requests). */
  health: 'healthy' | 'degraded' | 'failure' | 'idle';
}

export interface HotKey {
  policy: string;
  /** The bucket key's value as the policy built it (e.g. a user's sub or a client address). */
  key: string;
  allowed: number;
  limited: number;
}

export interface TelemetryOverview {
  /** When the object answered (ms since the epoch). */
  now: number;
  /** How far back the figures reach, in seconds. */
  windowSeconds: number;
  edges: EdgeStats[];
  /** Most limited keys first, then most used; at most 20. */
  hotKeys: HotKey[];
  /** Since the counters began (they survive restarts). */
  totals: { requests: number; errors: number; limited: number; authFailures: number; retries: number };
}
