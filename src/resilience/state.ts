/**
 * What an isolate knows about the endpoints it calls: requests in flight, outlier state, retry
 * budgets and balancer rotations. Per isolate, as each Envoy keeps its own: on Cloudflare many
 * isolates serve one route, and each judges the endpoints from its own traffic (docs/traffic.md).
 * Keyed by endpoint key and service name, so it outlives config changes for what remains.
 */
import { LruCache } from '../core/lru.ts';
import { freshOutlier, isEjected, recordOutcome, type OutlierPolicy, type OutlierState } from './outlier.ts';
import { budgetRequest, budgetRetry, freshBudget, type BudgetPolicy, type BudgetState } from './retry.ts';
import { smoothState, type SmoothState } from './balance/smooth-wrr.ts';
import { buildRing, type Ring } from './balance/ring.ts';

/** Endpoints and services an isolate tracks at most (old ones go first). */
const MAX_TRACKED = 10_000;
const FOREVER = Number.MAX_SAFE_INTEGER;

export class TrafficState {
  readonly #inFlight = new Map<string, number>();
  /** Only endpoints that have failed get one; pruned of healthy ones when it grows past MAX_TRACKED. */
  readonly #outliers = new Map<string, OutlierState>();
  readonly #budgets = new LruCache<BudgetState>(MAX_TRACKED);
  /** Rotations and rings per endpoint list (rebuilt with it: a config or registry change). */
  readonly #smooth = new WeakMap<object, SmoothState>();
  readonly #rings = new WeakMap<object, Ring>();

  inFlight(key: string): number {
    return this.#inFlight.get(key) ?? 0;
  }

  /** One more request in flight to `key`; the returned function ends it (once). */
  start(key: string): () => void {
    this.#inFlight.set(key, this.inFlight(key) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = this.inFlight(key) - 1;
      if (n > 0) this.#inFlight.set(key, n);
      else this.#inFlight.delete(key);
    };
  }

  ejected(key: string, now: number): boolean {
    const s = this.#outliers.get(key);
    return s !== undefined && isEjected(s, now);
  }

  /** Records a try's outcome for outlier detection; true when it ejected the endpoint. */
  recordOutcome(key: string, policy: OutlierPolicy, failed: boolean, now: number, peers: readonly string[]): boolean {
    let s = this.#outliers.get(key);
    if (!s) {
      // An endpoint that never failed needs no state: the common case costs one lookup.
      if (!failed) return false;
      if (this.#outliers.size >= MAX_TRACKED) this.#prune(now);
      this.#outliers.set(key, (s = freshOutlier(now)));
    }
    let ejectedNow = 0;
    // Only a failure that reaches the threshold needs to know how many peers are out.
    if (failed && s.consecutive + 1 >= policy.consecutive5xx)
      for (const k of peers) if (this.ejected(k, now)) ejectedNow++;
    return recordOutcome(s, policy, failed, now, ejectedNow, peers.length);
  }

  /** Forgets endpoints in rotation with nothing against them. */
  #prune(now: number): void {
    for (const [k, s] of this.#outliers)
      if (!isEjected(s, now) && s.consecutive === 0 && s.ejections === 0) this.#outliers.delete(k);
  }

  /** Per service and budget settings: an apply that leaves them alone keeps the window. */
  #budget(service: string, policy: BudgetPolicy): BudgetState {
    const key = `${service}|${policy.ratio}|${policy.minPerSecond}|${policy.ttlMs}`;
    let state = this.#budgets.get(key, 0);
    if (!state) this.#budgets.set(key, (state = freshBudget(policy)), FOREVER);
    return state;
  }

  budgetRequest(service: string, policy: BudgetPolicy, now: number): void {
    budgetRequest(this.#budget(service, policy), now);
  }

  budgetRetry(service: string, policy: BudgetPolicy, now: number): boolean {
    return budgetRetry(this.#budget(service, policy), policy, now);
  }

  smooth(list: object, weights: readonly number[]): SmoothState {
    let s = this.#smooth.get(list);
    if (!s) this.#smooth.set(list, (s = smoothState(weights)));
    return s;
  }

  ring(list: object, names: readonly string[], weights: readonly number[]): Ring {
    let r = this.#rings.get(list);
    if (!r) this.#rings.set(list, (r = buildRing(names, weights)));
    return r;
  }
}
