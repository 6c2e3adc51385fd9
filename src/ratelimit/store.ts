/**
 * The token-bucket store: a Durable Object holding buckets, found with idFromName. By default
 * each (enforcer, policy, key) has its own object, so every decision about a key is made in one
 * place for the whole edge while unrelated keys live in unrelated objects (a hot key slows only
 * itself, and a bucket lives near where its key is used). A policy with `partitions` spreads its
 * keys over that many objects instead, each holding many buckets (fewer objects, so the
 * decisions an isolate has for different keys share calls and writes).
 *
 * A Durable Object runs one event at a time, so each decision is an atomic read-modify-write on a
 * bucket held in memory: exact. `takeMany` decides a batch of requests (the decisions an isolate
 * coalesced while its previous call was in flight) one after another in one event, exactly as if
 * they had come one by one.
 *
 * Durability without a write per decision: the bucket lives in memory, and storage is kept
 * within one `reserve` of it (10% of the burst, at least the request's cost). The object writes
 * a bucket when it has spent more than a reserve since what is stored (a bucket never stored
 * counts as full), and whenever leases change. So a busy key costs a write per reserve spent,
 * not one per request, and a key that comes now and then, its bucket refilling in between,
 * costs no write at all: a thousand occasional users are not a thousand commits a second.
 *
 * The trade-off, in one direction only: an object that starts again from storage (crashed,
 * redeployed, evicted) may find a bucket holding up to one reserve more than it really did, and
 * admit that much more, once. Never more, and never less than it should: it errs towards
 * admitting, by at most a reserve per restart. The runtime evicts only objects idle for a while
 * (seconds locally, a minute or more on Cloudflare), and by then a bucket has refilled by its
 * rate times that long, which for most policies is more than a reserve: eviction forgets nothing.
 * An alarm forgets stored buckets once they would be full again; buckets in memory past that
 * point are dropped as decisions go by: idle keys cost nothing.
 */
import { DurableObject } from 'cloudflare:workers';
import {
  available,
  giveBack,
  holdBack,
  idleAt,
  level,
  take,
  type BucketState,
  type Decision,
  type LimitParams,
} from './algorithms.ts';

export interface TakeRequest {
  /** The bucket within the object (partitioned policies); absent: the object's own bucket. */
  key?: string;
  params: LimitParams;
  /** Units this request needs. */
  cost: number;
  /** Lease mode: take up to `want` units (at least `cost`) for the caller to spend locally. */
  want?: number;
  /** Lease mode: how long the caller may spend the lease, ms (default 1 s). */
  leaseTtlMs?: number;
  /** Lease mode: an earlier lease of the caller and how many of its units it did not use. */
  returning?: { lease: string; units: number };
  /**
   * Units given back, nothing taken: a request this bucket admitted was refused by another of
   * its route's policies. Capped at the burst, like any refill.
   */
  refund?: number;
}

export interface TakeResult extends Decision {
  /** Units taken: `cost` in exact mode, the lease size in lease mode, 0 when denied. */
  granted: number;
  /** Lease mode: the lease's id, to return its unused units with. */
  lease?: string;
}

/** Keep an idle bucket's state this long past the moment it would be full again. */
const FORGET_AFTER_MS = 60_000;
/** A bucket's reserve: this share of its burst (at least the cost of the request at hand). */
export const RESERVE_SHARE = 0.1;
/** A lease's units stay out of the bucket this long past the lease's end (clock skew, latency). */
const LEASE_GRACE_MS = 1_000;
const DEFAULT_LEASE_TTL_MS = 1_000;
/** Decisions between sweeps of the buckets held in memory. */
const SWEEP_EVERY = 4096;

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

/** One bucket as stored. */
interface Stored {
  bucket: BucketState;
  /** When the bucket, left alone, is full again plus a grace period: then it can be forgotten. */
  forgetAt: number;
  lent?: Lent[];
}

/** One bucket in memory: its state, and what storage holds for it. */
interface Entry {
  state: Stored;
  /** What is stored, within a reserve of `state`; undefined: nothing, which reads as full. */
  stored: Stored | undefined;
}

/** Storage key of a bucket; the object's own bucket keeps the key earlier versions used. */
const storageKey = (key: string) => (key === '' ? 'bucket' : `b:${key}`);

const held = (lent: readonly Lent[] | undefined) => (lent ?? []).reduce((n, l) => n + l.units, 0);

export class RateLimiter extends DurableObject {
  readonly #buckets = new Map<string, Entry>();
  /** Stored state of buckets not touched since this object started (params come with a request). */
  readonly #loaded = new Map<string, Stored>();
  #alarmAt: number | undefined;
  #decisions = 0;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    void ctx.blockConcurrencyWhile(async () => {
      const own = await ctx.storage.get<Stored>('bucket');
      if (own) this.#loaded.set('', own);
      for (const [k, v] of await ctx.storage.list<Stored>({ prefix: 'b:' })) this.#loaded.set(k.slice(2), v);
      this.#alarmAt = (await ctx.storage.getAlarm()) ?? undefined;
    });
  }

  /** Decides each request in order, as if each had come alone; one write for all of them. */
  takeMany(reqs: readonly TakeRequest[]): TakeResult[] {
    const now = Date.now();
    const writes: Record<string, Stored> = {};
    const results = reqs.map((r) => this.#decide(r, now, writes));
    // storage.put takes at most 128 entries at once (one event: they commit together anyway).
    const entries = Object.entries(writes);
    for (let i = 0; i < entries.length; i += 128)
      void this.ctx.storage.put(Object.fromEntries(entries.slice(i, i + 128)));
    this.#decisions += reqs.length;
    if (this.#decisions >= SWEEP_EVERY) this.#sweep(now);
    return results;
  }

  /** Drops buckets full again and never stored (stored ones are the alarm's). */
  #sweep(now: number): void {
    this.#decisions = 0;
    for (const [key, entry] of this.#buckets)
      if (entry.stored === undefined && now >= entry.state.forgetAt) this.#buckets.delete(key);
  }

  #decide(req: TakeRequest, now: number, writes: Record<string, Stored>): TakeResult {
    const key = req.key ?? '';
    const { params, cost } = req;
    let entry = this.#buckets.get(key);
    if (!entry) {
      const stored = this.#loaded.get(key);
      this.#loaded.delete(key);
      entry = { state: stored ?? { bucket: take(params, undefined, 0, now).state, forgetAt: 0 }, stored };
      this.#buckets.set(key, entry);
    }
    // Leases past their end (and grace) were spent or abandoned: their units stay taken.
    const lent = (entry.state.lent ?? []).filter((l) => l.until > now);
    let bucket = holdBack(params, entry.state.bucket, held(lent), now);
    const back = req.returning && lent.find((l) => l.id === req.returning!.lease);
    if (back) {
      bucket = giveBack(params, bucket, Math.min(req.returning!.units, back.units), now);
      lent.splice(lent.indexOf(back), 1);
    }
    if (req.refund !== undefined) bucket = giveBack(params, bucket, req.refund, now);
    const units =
      req.refund !== undefined
        ? 0
        : req.want === undefined
          ? cost
          : Math.max(cost, Math.min(req.want, available(params, bucket, now)));
    const outcome = take(params, bucket, units, now);
    let lease: string | undefined;
    if (req.want !== undefined && outcome.decision.allowed) {
      lease = crypto.randomUUID();
      lent.push({ id: lease, units, until: now + (req.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS) + LEASE_GRACE_MS });
    }
    const forgetAt = Math.max(idleAt(params, outcome.state) + FORGET_AFTER_MS, ...lent.map((l) => l.until));
    entry.state = { bucket: outcome.state, forgetAt, ...(lent.length > 0 ? { lent } : {}) };
    // Written when storage would give back more than a reserve, or leases changed (lent units
    // are out of the bucket until their lease ends: a restart must not hand them out again).
    const leasesChanged = lease !== undefined || back !== undefined;
    const reserve = Math.max(cost, Math.ceil(params.burst * RESERVE_SHARE));
    if (leasesChanged || this.#storedAhead(entry, params, now) > reserve + 1e-9) {
      entry.stored = entry.state;
      writes[storageKey(key)] = entry.state;
      this.#scheduleAlarm(forgetAt);
    }
    return { ...outcome.decision, granted: outcome.decision.allowed ? units : 0, ...(lease ? { lease } : {}) };
  }

  /** How much more the bucket as stored holds than the bucket does now (nothing stored: full). */
  #storedAhead({ stored, state }: Entry, params: LimitParams, now: number): number {
    const was = stored ? level(params, holdBack(params, stored.bucket, held(stored.lent), now), now) : params.burst;
    return was - level(params, holdBack(params, state.bucket, held(state.lent), now), now);
  }

  #scheduleAlarm(at: number): void {
    if (this.#alarmAt !== undefined && this.#alarmAt <= at) return;
    this.#alarmAt = at;
    void this.ctx.storage.setAlarm(at);
  }

  /** Current state of a bucket (status and tests). */
  peek(key = ''): BucketState | undefined {
    return this.#buckets.get(key)?.state.bucket ?? this.#loaded.get(key)?.bucket;
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    this.#alarmAt = undefined;
    const gone: string[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const [key, entry] of this.#buckets) {
      if (now >= entry.state.forgetAt) {
        this.#buckets.delete(key);
        gone.push(storageKey(key));
      } else next = Math.min(next, entry.state.forgetAt);
    }
    // Buckets stored but never touched since this object started: forget them by their own time.
    for (const [key, stored] of this.#loaded) {
      if (now >= stored.forgetAt) {
        this.#loaded.delete(key);
        gone.push(storageKey(key));
      } else next = Math.min(next, stored.forgetAt);
    }
    for (let i = 0; i < gone.length; i += 128) await this.ctx.storage.delete(gone.slice(i, i + 128));
    if (this.#buckets.size === 0 && this.#loaded.size === 0) {
      await this.ctx.storage.deleteAll();
    } else if (Number.isFinite(next)) this.#scheduleAlarm(next);
  }
}
