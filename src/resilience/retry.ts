/**
 * Retries: what may be retried, how long to wait, and the budget that keeps retries from
 * multiplying an outage. Pure functions with an injected clock and random source.
 */

/** Envoy's retry back-off: base 25 ms, at most 10x base, "full jitter". */
export const DEFAULT_BACKOFF_MS = 25;

/**
 * Wait before retry number `retry` (1 for the first): a random time in [0, base * 2^(retry-1)],
 * capped at `max` (default 10x base), so clients that failed together do not retry together.
 */
export function backoffMs(retry: number, baseMs: number, maxMs = baseMs * 10, random: () => number = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}

/** Methods that may be retried without the route saying so (RFC 9110 9.2.2: idempotent). */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * Linkerd's retry budget: retries may be at most `ratio` of the requests of the last `ttl`,
 * plus `minPerSecond` per second whatever the traffic, so a quiet service can still retry and a
 * busy one cannot add more than ratio x its load. Counted per second in a ring of buckets.
 */
export interface BudgetPolicy {
  ratio: number;
  minPerSecond: number;
  ttlMs: number;
}

export const DEFAULT_BUDGET: BudgetPolicy = { ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 };

export interface BudgetState {
  /** Per-second buckets over ttl: [second, requests, retries]. */
  readonly seconds: Array<{ at: number; requests: number; retries: number }>;
}

export const freshBudget = (p: BudgetPolicy): BudgetState => ({
  seconds: Array.from({ length: Math.max(1, Math.ceil(p.ttlMs / 1000)) }, () => ({
    at: -1,
    requests: 0,
    retries: 0,
  })),
});

function bucket(s: BudgetState, now: number) {
  const second = Math.floor(now / 1000);
  const b = s.seconds[second % s.seconds.length]!;
  if (b.at !== second) {
    b.at = second;
    b.requests = 0;
    b.retries = 0;
  }
  return b;
}

function totals(s: BudgetState, now: number): { requests: number; retries: number } {
  const second = Math.floor(now / 1000);
  let requests = 0;
  let retries = 0;
  for (const b of s.seconds) {
    if (b.at < 0 || second - b.at >= s.seconds.length) continue;
    requests += b.requests;
    retries += b.retries;
  }
  return { requests, retries };
}

/** A request (not a retry) was sent. */
export function budgetRequest(s: BudgetState, now: number): void {
  bucket(s, now).requests++;
}

/** Whether one more retry fits the budget; if it does it is counted. */
export function budgetRetry(s: BudgetState, p: BudgetPolicy, now: number): boolean {
  const { requests, retries } = totals(s, now);
  const allowed = p.ratio * requests + p.minPerSecond * s.seconds.length;
  if (retries + 1 > allowed) return false;
  bucket(s, now).retries++;
  return true;
}
