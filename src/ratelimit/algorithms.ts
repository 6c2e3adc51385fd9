/**
 * Rate-limit algorithms as pure functions of (state, parameters, cost, now): no clock, no I/O,
 * so they are tested with an injected clock and run unchanged inside the Durable Object.
 *
 * token bucket: capacity `burst`, refilled continuously at `limit` per `period`. Bursts up to
 *               `burst`, then `limit` per `period` on average.
 * gcra:         the generic cell rate algorithm (leaky bucket as a meter): requests are spaced
 *               `period / limit` apart; `burst` (default 1) allows that many back to back.
 *               Smooth shaping without the bucket's initial burst.
 */

export type Algorithm = 'token-bucket' | 'gcra';

export interface LimitParams {
  algorithm: Algorithm;
  /** Tokens per period. */
  limit: number;
  /** Period, ms. */
  periodMs: number;
  /** Bucket capacity (token bucket) or requests allowed back to back (gcra). */
  burst: number;
}

/** token bucket: tokens left and when; gcra: the theoretical arrival time. */
export type BucketState = { tokens: number; at: number } | { tat: number };

export interface Decision {
  allowed: boolean;
  /** Whole requests (of cost 1) that could be admitted right now after this one. */
  remaining: number;
  /** ms until the limit is fully replenished. */
  resetMs: number;
  /** ms until this request (its cost) could be admitted; 0 when allowed. */
  retryAfterMs: number;
}

export interface Outcome {
  decision: Decision;
  state: BucketState;
}

export function take(params: LimitParams, state: BucketState | undefined, cost: number, now: number): Outcome {
  return params.algorithm === 'gcra' ? gcra(params, state, cost, now) : tokenBucket(params, state, cost, now);
}

function tokenBucket(p: LimitParams, state: BucketState | undefined, cost: number, now: number): Outcome {
  const perMs = p.limit / p.periodMs;
  const prior = state && 'tokens' in state ? state : { tokens: p.burst, at: now };
  // A config change may shrink the bucket: never hold more than it can.
  const tokens = Math.min(p.burst, prior.tokens + Math.max(0, now - prior.at) * perMs);
  if (tokens + 1e-9 >= cost) {
    const left = tokens - cost;
    return {
      state: { tokens: left, at: now },
      decision: {
        allowed: true,
        remaining: Math.floor(left + 1e-9),
        resetMs: Math.ceil((p.burst - left) / perMs),
        retryAfterMs: 0,
      },
    };
  }
  return {
    state: { tokens, at: now },
    decision: {
      allowed: false,
      remaining: Math.floor(tokens + 1e-9),
      resetMs: Math.ceil((p.burst - tokens) / perMs),
      retryAfterMs: cost > p.burst ? Number.POSITIVE_INFINITY : Math.ceil((cost - tokens) / perMs),
    },
  };
}

function gcra(p: LimitParams, state: BucketState | undefined, cost: number, now: number): Outcome {
  const interval = p.periodMs / p.limit;
  const tolerance = p.burst * interval;
  const tat = Math.max(state && 'tat' in state ? state.tat : now, now);
  const newTat = tat + cost * interval;
  const allowAt = newTat - tolerance;
  if (allowAt <= now + 1e-6) {
    return {
      state: { tat: newTat },
      decision: {
        allowed: true,
        remaining: Math.max(0, Math.floor((now + tolerance - newTat) / interval + 1e-9)),
        resetMs: Math.ceil(newTat - now),
        retryAfterMs: 0,
      },
    };
  }
  return {
    state: { tat },
    decision: {
      allowed: false,
      remaining: Math.max(0, Math.floor((now + tolerance - tat) / interval + 1e-9)),
      resetMs: Math.ceil(tat - now),
      retryAfterMs: cost > p.burst ? Number.POSITIVE_INFINITY : Math.ceil(allowAt - now),
    },
  };
}

/** When an untouched bucket is back to full: after that its state can be forgotten. */
export function idleAt(params: LimitParams, state: BucketState): number {
  if ('tat' in state) return state.tat;
  return state.at + ((params.burst - state.tokens) * params.periodMs) / params.limit;
}

/** Whole units (requests of cost 1) that could be taken right now. */
export function available(params: LimitParams, state: BucketState | undefined, now: number): number {
  if (params.algorithm === 'gcra') {
    const interval = params.periodMs / params.limit;
    const tat = Math.max(state && 'tat' in state ? state.tat : now, now);
    return Math.max(0, Math.floor((now + params.burst * interval - tat) / interval + 1e-9));
  }
  const prior = state && 'tokens' in state ? state : { tokens: params.burst, at: now };
  const perMs = params.limit / params.periodMs;
  return Math.floor(Math.min(params.burst, prior.tokens + Math.max(0, now - prior.at) * perMs) + 1e-9);
}

/**
 * The bucket at `now` with `held` units still out on leases (taken, maybe not yet spent): it
 * refills only up to `burst - held`. Those units count as still in it, so an idle bucket cannot
 * fill up behind a lease, and giving them back later never makes room that was never there.
 */
export function holdBack(
  params: LimitParams,
  state: BucketState | undefined,
  held: number,
  now: number,
): BucketState | undefined {
  if (!state || held <= 0) return state;
  if ('tat' in state) return { tat: Math.max(state.tat, now + (held * params.periodMs) / params.limit) };
  const perMs = params.limit / params.periodMs;
  return {
    tokens: Math.max(0, Math.min(params.burst - held, state.tokens + Math.max(0, now - state.at) * perMs)),
    at: now,
  };
}

/** Puts back units taken but not used (an expiring lease); never above a full bucket. */
export function giveBack(
  params: LimitParams,
  state: BucketState | undefined,
  units: number,
  now: number,
): BucketState | undefined {
  if (!state || units <= 0) return state;
  if ('tat' in state) return { tat: Math.max(now, state.tat - (units * params.periodMs) / params.limit) };
  const perMs = params.limit / params.periodMs;
  const tokens = Math.min(params.burst, state.tokens + Math.max(0, now - state.at) * perMs + units);
  return { tokens, at: now };
}

/** Units the bucket holds at `now` (fractional; below 0 for a bucket in debt). */
export function level(params: LimitParams, state: BucketState | undefined, now: number): number {
  if (params.algorithm === 'gcra') {
    const interval = params.periodMs / params.limit;
    const tat = Math.max(state && 'tat' in state ? state.tat : now, now);
    return (now + params.burst * interval - tat) / interval;
  }
  const prior = state && 'tokens' in state ? state : { tokens: params.burst, at: now };
  return Math.min(params.burst, prior.tokens + (Math.max(0, now - prior.at) * params.limit) / params.periodMs);
}
