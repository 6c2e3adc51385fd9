/**
 * Coalescing store calls: while an isolate has a call in flight to an object, the requests for
 * that object that come meanwhile wait, and go together in the next call, which decides them one
 * by one in one event (RateLimiter.takeMany). With no call in flight a request goes at once, so
 * an unloaded isolate waits no longer than before; a loaded one makes a call per round trip per
 * object instead of one per request. Each request still gets its own decision.
 *
 * What the Workers runtime asks of code that waits across requests:
 * - The next batch is sent by one of its own requests, from that request's context (which waits
 *   for the answer anyway), never by a request already answered: I/O belongs to the request that
 *   started it, and a request that kept sending for others could outlive what it is allowed.
 * - A request whose only pending work is a promise another request will settle is taken for hung
 *   and cancelled. So a waiting request holds a timer of its own: its deadline. When it fires
 *   the request fails as a store failure would (the policy's onStoreFailure decides), and if the
 *   call it was in never came back (its sender's context ended), the object's next batch goes
 *   without it: one lost call delays an object by at most the deadline, never for good.
 * - `keepAlive` (the sender's waitUntil) keeps a call in flight when its sender's client goes
 *   away, so the requests in the batch still get their answers.
 */

/** Sends a batch and answers each item, in order. */
export type SendBatch<Q, R> = (batch: Q[]) => Promise<R[]>;

/** A request that waited longer than the deadline for its batch's answer. */
export class StoreTimeout extends Error {
  constructor(ms: number) {
    super(`no answer from the rate-limit store within ${ms} ms`);
    this.name = 'StoreTimeout';
  }
}

interface Waiting<Q, R> {
  item: Q;
  send: SendBatch<Q, R>;
  keepAlive: ((p: Promise<unknown>) => void) | undefined;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
  /** Makes this request the sender of `batch` (resolved from another request's context). */
  lead: (batch: Waiting<Q, R>[]) => void;
}

interface Lane<Q, R> {
  /** The batch in flight. */
  batch: Waiting<Q, R>[];
  /** Waiting for the next call. */
  queue: Waiting<Q, R>[];
}

/** Most items in one call (bounds the message size; a longer queue takes several calls). */
export const MAX_BATCH = 256;
/** How long a waiting request waits for its answer before it fails as a store failure. */
export const WAIT_DEADLINE_MS = 5_000;

export class Coalescer<Q, R> {
  /** A lane per object with a call in flight; an idle object has none. */
  readonly #lanes = new Map<string, Lane<Q, R>>();

  constructor(readonly deadlineMs = WAIT_DEADLINE_MS) {}

  /** Objects with a call in flight now (tests, health). */
  get inFlight(): number {
    return this.#lanes.size;
  }

  call(object: string, item: Q, send: SendBatch<Q, R>, keepAlive?: (p: Promise<unknown>) => void): Promise<R> {
    const lane = this.#lanes.get(object);
    return new Promise<R>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let settled = false;
      const settle =
        <T>(fn: (v: T) => void) =>
        (v: T) => {
          if (settled) return;
          settled = true;
          if (timer !== undefined) clearTimeout(timer);
          fn(v);
        };
      let lead!: (batch: Waiting<Q, R>[]) => void;
      // Created here, so the batch this request leads is sent from this request's context.
      void new Promise<Waiting<Q, R>[]>((r) => (lead = r)).then((batch) => this.#run(object, batch));
      const self: Waiting<Q, R> = { item, send, keepAlive, resolve: settle(resolve), reject: settle(reject), lead };
      if (lane) {
        lane.queue.push(self);
        timer = setTimeout(() => this.#expire(object, self), this.deadlineMs);
      } else {
        const batch = [self];
        this.#lanes.set(object, { batch, queue: [] });
        lead(batch);
      }
    });
  }

  #run(object: string, batch: Waiting<Q, R>[]): void {
    const answered = (results: R[]) => {
      batch.forEach((w, i) =>
        i < results.length ? w.resolve(results[i]!) : w.reject(new Error('the store answered too few requests')),
      );
    };
    const failed = (e: unknown) => batch.forEach((w) => w.reject(e));
    const sender = batch[0]!;
    let sent: Promise<R[]>;
    try {
      sent = sender.send(batch.map((w) => w.item));
    } catch (e) {
      sent = Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const done = sent.then(answered, failed).finally(() => {
      // A batch given up on (its answer was too late) has been replaced: leave the lane alone.
      const lane = this.#lanes.get(object);
      if (lane?.batch === batch) this.#next(object, lane);
    });
    sender.keepAlive?.(done);
  }

  /** Sends the next batch from the queue, or retires the lane. */
  #next(object: string, lane: Lane<Q, R>): void {
    const next = lane.queue.splice(0, MAX_BATCH);
    if (next.length === 0) {
      this.#lanes.delete(object);
      return;
    }
    lane.batch = next;
    next[0]!.lead(next);
  }

  /**
   * A waiting request's deadline passed: it fails, and the call in flight (which has taken at
   * least that long) is given up on, so the next batch goes without waiting for it.
   */
  #expire(object: string, w: Waiting<Q, R>): void {
    w.reject(new StoreTimeout(this.deadlineMs));
    const lane = this.#lanes.get(object);
    if (!lane) return;
    const queued = lane.queue.indexOf(w);
    if (queued >= 0) lane.queue.splice(queued, 1);
    // w was in an earlier batch, given up on already: nothing more to do.
    if (queued >= 0 || lane.batch.includes(w)) this.#next(object, lane);
  }
}
