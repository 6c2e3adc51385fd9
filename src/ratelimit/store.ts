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
import { available, giveBack, idleAt, take, type BucketState, type Decision, type LimitParams } from './algorithms.ts';

export interface TakeRequest {
  params: LimitParams;
  /** Units this request needs. */
  cost: number;
  /** Lease mode: take up to `want` units (at least `cost`) for the caller to spend locally. */
  want?: number;
  /** Lease mode: units of an earlier lease the caller did not use. */
  returning?: number;
}

export interface TakeResult extends Decision {
  /** Units taken: `cost` in exact mode, the lease size in lease mode, 0 when denied. */
  granted: number;
}

/** Keep an idle bucket's state this long past the moment it would be full again. */
const FORGET_AFTER_MS = 60_000;
/** At most one storage write per this interval, whatever the request rate. */
export const FLUSH_MS = 20;

interface Stored {
  bucket: BucketState;
  /** When the bucket, left alone, is full again plus a grace period: then it can be forgotten. */
  forgetAt: number;
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
    let bucket = this.#stored?.bucket;
    if (req.returning) bucket = giveBack(params, bucket, req.returning, now);
    const units = req.want === undefined ? cost : Math.max(cost, Math.min(req.want, available(params, bucket, now)));
    const outcome = take(params, bucket, units, now);
    this.#stored = { bucket: outcome.state, forgetAt: idleAt(params, outcome.state) + FORGET_AFTER_MS };
    this.#scheduleFlush();
    if (!this.#alarmSet) {
      this.#alarmSet = true;
      void this.ctx.storage.setAlarm(this.#stored.forgetAt);
    }
    return { ...outcome.decision, granted: outcome.decision.allowed ? units : 0 };
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
