/**
 * The token-bucket store: one Durable Object per (policy, key), found with idFromName, so every
 * decision about a key is made in one place, strongly consistent across the whole edge, while
 * unrelated keys live in unrelated objects (a hot key slows only itself).
 *
 * A Durable Object runs one event at a time, so take() is an atomic read-modify-write on the
 * bucket held in memory: every decision about a key is exact. The bucket is written to storage
 * at most every FLUSH_MS (a write per request would halve what one object can decide per
 * second), so it survives restarts; only a crash of the object can lose the last FLUSH_MS of
 * spending. An alarm forgets a bucket once it would be full again: idle keys cost nothing.
 */
import { DurableObject } from 'cloudflare:workers';
import {
  available,
  giveBack,
  holdBack,
  idleAt,
  take,
  type BucketState,
  type Decision,
  type LimitParams,
} from './algorithms.ts';

export interface TakeRequest {
  params: LimitParams;
  /** Units this request needs. */
  cost: number;
  /** Lease mode: take up to `want` units (at least `cost`) for the caller to spend locally. */
  want?: number;
  /** Lease mode: how long the caller may spend the lease, ms (default 1 s). */
  leaseTtlMs?: number;
  /** Lease mode: an earlier lease of the caller and how many of its units it did not use. */
  returning?: { lease: string; units: number };
}

export interface TakeResult extends Decision {
  /** Units taken: `cost` in exact mode, the lease size in lease mode, 0 when denied. */
  granted: number;
  /** Lease mode: the lease's id, to return its unused units with. */
  lease?: string;
}

/** Keep an idle bucket's state this long past the moment it would be full again. */
const FORGET_AFTER_MS = 60_000;
/** At most one storage write per this interval, whatever the request rate. */
export const FLUSH_MS = 20;
/** A lease's units stay out of the bucket this long past the lease's end (clock skew, latency). */
const LEASE_GRACE_MS = 1_000;
const DEFAULT_LEASE_TTL_MS = 1_000;

/**
 * Units out on a lease. Until they come back or the lease ends, the bucket does not refill the
 * room they left: had they never been taken, it would have been full that much sooner, and
 * giving them back into room that filled up in the meantime would admit more than the bound.
 */
interface Lent {
  id: string;
  units: number;
  until: number;
}

interface Stored {
  bucket: BucketState;
  /** When the bucket, left alone, is full again plus a grace period: then it can be forgotten. */
  forgetAt: number;
  lent?: Lent[];
}

export class RateLimiter extends DurableObject {
  #stored: Stored | undefined;
  #alarmSet = false;
  #flushScheduled = false;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    void ctx.blockConcurrencyWhile(async () => {
      this.#stored = await ctx.storage.get<Stored>('bucket');
      this.#alarmSet = (await ctx.storage.getAlarm()) !== null;
    });
  }

  take(req: TakeRequest): TakeResult {
    const now = Date.now();
    const { params, cost } = req;
    // Leases past their end (and grace) were spent or abandoned: their units stay taken.
    const lent = (this.#stored?.lent ?? []).filter((l) => l.until > now);
    let bucket = holdBack(
      params,
      this.#stored?.bucket,
      lent.reduce((n, l) => n + l.units, 0),
      now,
    );
    const back = req.returning && lent.find((l) => l.id === req.returning!.lease);
    if (back) {
      bucket = giveBack(params, bucket, Math.min(req.returning!.units, back.units), now);
      lent.splice(lent.indexOf(back), 1);
    }
    const units = req.want === undefined ? cost : Math.max(cost, Math.min(req.want, available(params, bucket, now)));
    const outcome = take(params, bucket, units, now);
    let lease: string | undefined;
    if (req.want !== undefined && outcome.decision.allowed) {
      lease = crypto.randomUUID();
      lent.push({ id: lease, units, until: now + (req.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS) + LEASE_GRACE_MS });
    }
    const forgetAt = Math.max(idleAt(params, outcome.state) + FORGET_AFTER_MS, ...lent.map((l) => l.until));
    this.#stored = { bucket: outcome.state, forgetAt, ...(lent.length > 0 ? { lent } : {}) };
    this.#scheduleFlush();
    if (!this.#alarmSet) {
      this.#alarmSet = true;
      void this.ctx.storage.setAlarm(this.#stored.forgetAt);
    }
    return { ...outcome.decision, granted: outcome.decision.allowed ? units : 0, ...(lease ? { lease } : {}) };
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setTimeout(() => {
      this.#flushScheduled = false;
      if (this.#stored) void this.ctx.storage.put('bucket', this.#stored);
    }, FLUSH_MS);
  }

  /** Current bucket state (status and tests). */
  peek(): BucketState | undefined {
    return this.#stored?.bucket;
  }

  override async alarm(): Promise<void> {
    // Later takes move forgetAt out without rescheduling: check, and sleep again if needed.
    const stored = this.#stored;
    if (!stored || Date.now() >= stored.forgetAt) {
      this.#stored = undefined;
      this.#alarmSet = false;
      await this.ctx.storage.deleteAll();
    } else {
      await this.ctx.storage.setAlarm(stored.forgetAt);
    }
  }
}
