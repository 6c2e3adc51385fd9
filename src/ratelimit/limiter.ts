/**
 * The client side of rate limiting, used by the gateway (route policies) and the wrapper
 * (service policies): builds each policy's bucket key, asks the bucket's Durable Object, and
 * turns the answers into a decision and IETF RateLimit headers.
 *
 * exact mode: one store call per policy per request, all policies in parallel (one round trip).
 * lease mode: an isolate takes `lease.size` units at once and spends them locally for up to
 *   `lease.ttl`; unused units go back with the next lease (if it comes less than a second after
 *   the lease ended; after that they count as spent). Units are taken from the bucket before
 *   they are spent, and the bucket does not refill the room of units out on a lease, so lease
 *   mode never admits more than exact mode would (no over-admission); it may refuse early while
 *   other isolates hold unspent units.
 */
import { entrypointOf, namespaceOf, type MeshBindings } from '../core/bindings.ts';
import { errorResponse } from '../core/errors.ts';
import { errorText, logEvent } from '../core/log.ts';
import type { RateLimiter, TakeRequest, TakeResult } from './store.ts';
import { Coalescer } from './coalesce.ts';
import { placement } from './placement.ts';
import { bucketKey, type BucketKey, type CompiledLimit, type LimitFacts } from './policy.ts';

export interface LimitOutcome {
  /** A 429 (or 503 for a fail-closed store failure) to answer with, or undefined to go on. */
  reject: Response | undefined;
  /** RateLimit-Policy and RateLimit, for the response (also on the 429). */
  headers: Array<[string, string]>;
  /** Each policy's decision and the bucket key's values (for metrics and hot keys). */
  decisions: LimitDecision[];
}

export interface LimitDecision {
  policy: string;
  /** The key as it may be shown (BucketKey.shown: header values hashed); "" when no key was built. */
  key: string;
  decision: 'allowed' | 'limited' | 'store_error';
}

interface Lease {
  /** The store's id for it, to return unused units with. */
  id: string | undefined;
  units: number;
  expiresAt: number;
  last: TakeResult;
}

/** `refund` gives back what an admitting decision took (when another policy refused the request). */
type Verdict =
  | { limit: CompiledLimit; raw: string; result: TakeResult; refund?: () => Promise<unknown> }
  | { limit: CompiledLimit; raw: string; failed: true };

/** One take from a bucket, wherever the bucket is reached from. */
export type Bucket = (request: TakeRequest) => Promise<TakeResult>;

/** Who enforces a limit: the gateway (route policies), or a service (its own policies). */
export type Enforcer =
  | { member: 'gateway' }
  /** A service reaches buckets through the gateway's RateLimits entrypoint, proving who it is. */
  | { member: string; identity: () => Promise<string> };

const GATEWAY: Enforcer = { member: 'gateway' };

/** The audience of the identity token a service shows the RateLimits entrypoint. */
export const LIMITER_AUDIENCE = 'meshwork-limiter';

/** What a service asks of the RateLimits entrypoint: its policy and bucket, never parameters. */
export interface GateRequest {
  policy: string;
  /** The bucket within the policy (BucketKey.id) and its key values (BucketKey.raw, for overrides). */
  key: string;
  raw: string;
  /** Lease mode: how many units, and the earlier lease's unused units. */
  want?: number;
  returning?: { lease: string; units: number };
}

export type GateAnswer = { ok: true; result: TakeResult } | { ok: false; error: string };

export interface RateLimitGate {
  take(identityToken: string, request: GateRequest): Promise<GateAnswer>;
}

/**
 * The bucket for `key` in the object that holds it (`member` enforces it): each call is decided
 * there, sharing the store call with this isolate's other requests for that object. The
 * gateway's own limits and the services' (through the RateLimits entrypoint) both use it.
 *
 * Placement and the send function are made once per bucket, not per call.
 */
export function storeBucket(
  ns: DurableObjectNamespace<RateLimiter>,
  coalescer: Coalescer<TakeRequest, TakeResult>,
  limit: CompiledLimit,
  key: BucketKey,
  member: string,
  keepAlive: ((p: Promise<unknown>) => void) | undefined,
): Bucket {
  const { object, key: inObject } = placement(limit, key, member);
  const lane = `${limit.store}|${object}`;
  const send = (batch: TakeRequest[]) => ns.get(ns.idFromName(object)).takeMany(batch);
  return (request) =>
    coalescer.call(lane, inObject === undefined ? request : { ...request, key: inObject }, send, keepAlive);
}

function bucketOf(
  env: MeshBindings,
  limit: CompiledLimit,
  key: BucketKey,
  enforcer: Enforcer,
  coalescer: Coalescer<TakeRequest, TakeResult>,
  keepAlive: ((p: Promise<unknown>) => void) | undefined,
): Bucket {
  if (!('identity' in enforcer)) {
    const ns = namespaceOf<RateLimiter>(env, limit.store);
    if (!ns) throw new Error(`Durable Object binding ${limit.store} is not bound`);
    return storeBucket(ns, coalescer, limit, key, 'gateway', keepAlive);
  }
  const gate = entrypointOf(env, limit.store, 'take') as unknown as RateLimitGate | undefined;
  if (!gate) throw new Error(`${limit.store} is not bound to the gateway's RateLimits entrypoint`);
  return async (request) => {
    const answer = await gate.take(await enforcer.identity(), {
      policy: limit.name,
      key: key.id,
      raw: key.raw,
      ...(request.want !== undefined ? { want: request.want } : {}),
      ...(request.returning ? { returning: request.returning } : {}),
    });
    if (!answer.ok) throw new Error(answer.error);
    return answer.result;
  };
}

export class Limiter {
  /** Store failures seen by this isolate (fail-open and fail-closed), for /_mesh/health. */
  readonly storeFailures = { open: 0, closed: 0 };
  readonly #leases = new Map<string, Lease>();
  readonly #pending = new Map<string, Promise<void>>();
  /** Store calls in flight per object, and the requests waiting to go in the next one. */
  readonly #coalescer = new Coalescer<TakeRequest, TakeResult>();

  readonly #policyHeaders = new WeakMap<readonly CompiledLimit[], string>();

  async check(
    all: readonly CompiledLimit[],
    facts: LimitFacts,
    env: MeshBindings,
    requestId: string,
    enforcer: Enforcer = GATEWAY,
    /** The request's waitUntil: a store call it sends for others outlives its own response. */
    keepAlive?: (p: Promise<unknown>) => void,
  ): Promise<LimitOutcome> {
    const applies = (l: CompiledLimit) => !l.callers || (facts.caller !== undefined && l.callers.has(facts.caller));
    const limits = all.every(applies) ? all : all.filter(applies);
    if (limits.length === 0) return { headers: [], reject: undefined, decisions: [] };
    const decided = limits.map((l) => this.#decide(l, facts, env, requestId, enforcer, keepAlive));
    // Lease hits are decided without a promise; only store calls are awaited.
    // Some entries are promises, some already decided (lease hits): Promise.all takes both.
    // eslint-disable-next-line @typescript-eslint/await-thenable
    const verdicts = decided.some((v) => v instanceof Promise) ? await Promise.all(decided) : (decided as Verdict[]);
    let policy = this.#policyHeaders.get(limits);
    if (policy === undefined) this.#policyHeaders.set(limits, (policy = limits.map((l) => l.policyHeader).join(', ')));
    const headers: Array<[string, string]> = [['ratelimit-policy', policy]];
    const known = verdicts.filter((v): v is Extract<Verdict, { result: TakeResult }> => 'result' in v);
    if (known.length > 0)
      headers.push([
        'ratelimit',
        known
          .map((v) => `"${v.limit.name}";r=${v.result.remaining};t=${Math.ceil(v.result.resetMs / 1000)}`)
          .join(', '),
      ]);

    const decisions = verdicts.map((v): LimitDecision => ({
      policy: v.limit.name,
      key: v.raw,
      decision: 'failed' in v ? 'store_error' : v.result.allowed ? 'allowed' : 'limited',
    }));
    const closed = verdicts.find((v) => 'failed' in v && !v.limit.failOpen);
    if (closed) {
      this.#refund(known, requestId, keepAlive);
      return {
        headers,
        decisions,
        reject: errorResponse(
          503,
          'rate_limit_unavailable',
          `rate limit "${closed.limit.name}" cannot be checked right now`,
          requestId,
          [...headers, ['retry-after', '1']],
        ),
      };
    }
    const denied = known.filter((v) => !v.result.allowed);
    if (denied.length === 0) return { headers, reject: undefined, decisions };
    this.#refund(known, requestId, keepAlive);
    const waitMs = Math.max(
      ...denied.map((v) => (Number.isFinite(v.result.retryAfterMs) ? v.result.retryAfterMs : v.limit.params.periodMs)),
    );
    const names = denied.map((v) => `"${v.limit.name}"`).join(', ');
    return {
      headers,
      decisions,
      reject: errorResponse(429, 'rate_limited', `rate limit ${names} exceeded`, requestId, [
        ...headers,
        ['retry-after', String(Math.max(1, Math.ceil(waitMs / 1000)))],
      ]),
    };
  }

  #decide(
    limit: CompiledLimit,
    facts: LimitFacts,
    env: MeshBindings,
    requestId: string,
    enforcer: Enforcer,
    keepAlive: ((p: Promise<unknown>) => void) | undefined,
  ): Verdict | Promise<Verdict> {
    let raw = '';
    const failed = (e: unknown): Verdict => {
      if (limit.failOpen) this.storeFailures.open++;
      else this.storeFailures.closed++;
      logEvent('error', 'rate limit store failed', {
        requestId,
        policy: limit.name,
        failOpen: limit.failOpen,
        error: errorText(e),
      });
      return { limit, raw, failed: true };
    };
    try {
      const key = bucketKey(limit, facts);
      const decide = (k: BucketKey): Verdict | Promise<Verdict> => {
        raw = k.shown;
        const params = limit.overrides.get(k.raw) ?? limit.params;
        if (limit.lease) {
          const spent = this.#spendLease(limit, k.id);
          if (spent) return { limit, raw, result: spent, refund: () => this.#unspendLease(limit, k.id) };
        }
        const bucket = bucketOf(env, limit, k, enforcer, this.#coalescer, keepAlive);
        const result = limit.lease
          ? this.#fromLease(limit, k.id, params, bucket)
          : bucket({ params, cost: limit.cost });
        // Only the gateway's own store calls can give back: the services' entrypoint only takes.
        const refundable = !limit.lease && !('identity' in enforcer);
        return result.then(
          (r): Verdict =>
            refundable
              ? { limit, raw, result: r, refund: () => bucket({ params, cost: 0, refund: limit.cost }) }
              : { limit, raw, result: r },
          failed,
        );
      };
      return key instanceof Promise ? key.then(decide).catch(failed) : decide(key);
    } catch (e) {
      return failed(e);
    }
  }

  /** Refused: the policies that admitted the request get their units back (in the background). */
  #refund(
    known: ReadonlyArray<Extract<Verdict, { result: TakeResult }>>,
    requestId: string,
    keepAlive: ((p: Promise<unknown>) => void) | undefined,
  ): void {
    for (const v of known) {
      if (!v.result.allowed || !v.refund) continue;
      const back = v
        .refund()
        .catch((e: unknown) =>
          logEvent('warn', 'rate limit refund failed', { requestId, policy: v.limit.name, error: errorText(e) }),
        );
      if (keepAlive) keepAlive(back);
    }
  }

  #inserts = 0;

  /** Forgets expired leases now and then, so many keys (one per client) do not pile up. */
  #sweep(): void {
    if (++this.#inserts % 1000 !== 0) return;
    const now = Date.now();
    for (const [key, lease] of this.#leases) if (now >= lease.expiresAt) this.#leases.delete(key);
  }

  /** Puts a spend back into the lease it came from, while that lease lasts. */
  #unspendLease(limit: CompiledLimit, id: string): Promise<void> {
    const lease = this.#leases.get(id);
    if (lease && Date.now() < lease.expiresAt) lease.units += limit.cost;
    return Promise.resolve();
  }

  /** Spends from this isolate's lease for the key, if it has enough left. */
  #spendLease(limit: CompiledLimit, id: string): TakeResult | undefined {
    const lease = this.#leases.get(id);
    if (!lease || Date.now() >= lease.expiresAt || lease.units < limit.cost) return undefined;
    lease.units -= limit.cost;
    return { ...lease.last, allowed: true, remaining: lease.last.remaining + lease.units, retryAfterMs: 0 };
  }

  async #fromLease(
    limit: CompiledLimit,
    id: string,
    params: CompiledLimit['params'],
    bucket: Bucket,
  ): Promise<TakeResult> {
    const { size, ttlMs } = limit.lease!;
    for (;;) {
      const spent = this.#spendLease(limit, id);
      if (spent) return spent;
      const lease = this.#leases.get(id);
      // One lease request per key at a time; the others wait for it, then spend from it.
      const pending = this.#pending.get(id);
      if (pending) {
        await pending;
        continue;
      }
      let denied: TakeResult | undefined;
      const request = (async () => {
        const returning = lease?.id ? { lease: lease.id, units: lease.units } : undefined;
        this.#leases.delete(id);
        const r = await bucket({
          params,
          cost: limit.cost,
          want: Math.max(size, limit.cost),
          leaseTtlMs: ttlMs,
          ...(returning ? { returning } : {}),
        });
        if (r.allowed) {
          this.#leases.set(id, { id: r.lease, units: r.granted, expiresAt: Date.now() + ttlMs, last: r });
          this.#sweep();
        } else denied = r;
      })();
      this.#pending.set(id, request);
      try {
        await request;
      } finally {
        this.#pending.delete(id);
      }
      if (denied) return denied;
    }
  }
}
