/**
 * Coalescing store calls: while an isolate has a call in flight to an object, the requests for
 * that object that come meanwhile wait, and go together in the next call, which decides them one
 * by one in one event (RateLimiter.takeMany). With no call in flight a request goes at once, so
 * an unloaded isolate waits no longer than before; a loaded one makes a call per round trip per
 * object instead of one per request. Each request still gets its own decision. A queue that
 * reaches MAX_BATCH goes at once, beside the call in flight, so a burst never waits for rounds.
 *
 * What the Workers runtime asks of code that waits across requests:
 * - Code resumed by another request's promise can run in that request's I/O context: a Durable
 *   Object call made there, or even the Response a handler builds there, is refused ("Cannot
 *   perform I/O on behalf of a different request", I/O types SpanParent, ReadableStreamSource).
 *   Under load, once clients had come and gone, that failed request after request (workerd
 *   1.20260421), whether a waiting request was handed its answer or its batch by a promise
 *   another request resolved, or awaited the call ahead itself. So nothing here resolves a
 *   promise for another request: a waiting request awaits the call ahead of it and then steps
 *   through a timer of its own (a timer callback is an event of the request that set it)
 *   before it reads its answer from the batch or sends the queue. Nobody sends for a request
 *   already answered either: the sender is always one of the batch's own requests.
 * - A request whose only pending work is a promise another request will settle is taken for hung
 *   and cancelled. The timer it waits with is its own.
 * - Deadlines: a request whose call has been out for WAIT_DEADLINE_MS fails as a store failure
 *   would (the policy's onStoreFailure decides). A call out that long is given up on: requests
 *   queued behind it are sent without waiting for it. So a lost call (its sender's context
 *   ended) delays an object's requests by at most the deadline, never for good, and a request
 *   that waited long behind healthy calls is never failed for it. Requests whose clients went
 *   away never wake; the next request to send takes them along.
 * The sender keeps its call alive with `keepAlive` (its waitUntil) if its client goes away.
 */

/** Sends a batch and answers each item, in order. */
export type SendBatch<Q, R> = (batch: Q[]) => Promise<R[]>;

/** A request whose call did not answer within the deadline. */
export class StoreTimeout extends Error {
  constructor(ms: number) {
    super(`no answer from the rate-limit store within ${ms} ms`);
    this.name = 'StoreTimeout';
  }
}

type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

interface Waiting<Q, R> {
  item: Q;
  /** Set by the batch's sender when the call is over; read by the request itself. */
  outcome: Outcome<R> | undefined;
  /** The call it is in, once sent. */
  batch: Batch<Q, R> | undefined;
}

interface Batch<Q, R> {
  members: Waiting<Q, R>[];
  sentAt: number;
  /** Settles (never rejects) when the call is over and every member has its outcome. */
  done: Promise<void>;
}

interface Lane<Q, R> {
  inFlight: Set<Batch<Q, R>>;
  /** The call most recently sent: what a request that queues now waits behind. */
  latest: Batch<Q, R> | undefined;
  /** Waiting for the next call, in the order they came. */
  queue: Waiting<Q, R>[];
  /** Requests waiting on a call (theirs or the one ahead) to read their answer or send. */
  waking: number;
  /** When its last call ended (ms): how stale what a lane holds is. */
  endedAt: number;
}

/** Most items in one call (bounds the message size). */
export const MAX_BATCH = 128;
/** How long a request's call may be out before it fails as a store failure. */
export const WAIT_DEADLINE_MS = 5_000;
/** Calls between sweeps of abandoned lanes. */
const SWEEP_EVERY = 4096;

const unwrap = <R>(o: Outcome<R>): R => {
  if (o.ok) return o.value;
  throw o.error;
};

export class Coalescer<Q, R> {
  /** A lane per object with a call in flight or requests waiting; an idle object has none. */
  readonly #lanes = new Map<string, Lane<Q, R>>();

  constructor(readonly deadlineMs = WAIT_DEADLINE_MS) {}

  /** Objects with a call in flight or requests waiting now (tests). */
  get inFlight(): number {
    return this.#lanes.size;
  }

  async call(object: string, item: Q, send: SendBatch<Q, R>, keepAlive?: (p: Promise<unknown>) => void): Promise<R> {
    if (++this.#calls % SWEEP_EVERY === 0) this.#sweep();
    let lane = this.#lanes.get(object);
    // Requests whose clients went away mid-wait never finish waking or sending: once nothing has
    // been in flight for a deadline, nobody is about to send, so a request that comes goes at once.
    if (lane && lane.waking > 0 && lane.inFlight.size === 0 && Date.now() - lane.endedAt > this.deadlineMs)
      lane.waking = 0;
    if (!lane)
      this.#lanes.set(object, (lane = { inFlight: new Set(), latest: undefined, queue: [], waking: 0, endedAt: 0 }));
    const self: Waiting<Q, R> = { item, outcome: undefined, batch: undefined };
    lane.queue.push(self);
    let woke = false;
    for (;;) {
      if (self.outcome) return unwrap(self.outcome);
      // The call it is in, or else the one ahead of it.
      const ahead = self.batch ?? (lane.latest && lane.inFlight.has(lane.latest) ? lane.latest : undefined);
      // It sends, now, in its own event, and waits on its own I/O: with nothing in flight, unless
      // it has just come and others are about to send (they wake from the call that just ended:
      // going first would keep them waiting while it, and those like it, kept the object busy);
      // or with a full queue.
      const idle = !ahead && (woke || lane.waking === 0);
      if (!self.batch && (idle || lane.queue.length >= MAX_BATCH)) {
        const batch = this.#sendQueue(object, lane, self, send);
        try {
          keepAlive?.(batch.done);
        } catch {
          // A cancelled request's waitUntil may refuse: the call goes on without it.
        }
        // Its own call, its own I/O: no step through a timer, only the deadline.
        if (!(await this.#wait(batch, false))) continue;
        lane.inFlight.delete(batch);
        this.#retireIfIdle(object, lane);
        throw new StoreTimeout(this.deadlineMs);
      }
      const waitFor = (ahead ?? lane.latest)!;
      lane.waking++;
      let overdue: boolean;
      try {
        overdue = await this.#wait(waitFor, true);
      } finally {
        lane.waking = Math.max(0, lane.waking - 1);
        this.#retireIfIdle(object, lane);
      }
      woke = true;
      if (self.outcome) return unwrap(self.outcome);
      if (!overdue) continue;
      // Out for the deadline: it will not come back. Its own call fails it; a call it was
      // queued behind is given up, and it goes on without it.
      lane.inFlight.delete(waitFor);
      this.#retireIfIdle(object, lane);
      if (self.batch === waitFor) throw new StoreTimeout(this.deadlineMs);
    }
  }

  /**
   * Waits for `batch` to be over, at most until its deadline (true: overdue); with `step`, then
   * for a timer of this request's own, so what follows runs in this request's event (see the top).
   */
  async #wait(batch: Batch<Q, R>, step: boolean): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const left = batch.sentAt + this.deadlineMs - Date.now();
    const overdue = await Promise.race([
      batch.done.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), Math.max(0, left)))),
    ]);
    if (timer !== undefined) clearTimeout(timer);
    if (step) await new Promise((r) => setTimeout(r, 0));
    return overdue;
  }

  /** `sender`, queued in `lane`, sends the queue (up to MAX_BATCH, itself included). */
  #sendQueue(object: string, lane: Lane<Q, R>, sender: Waiting<Q, R>, send: SendBatch<Q, R>): Batch<Q, R> {
    const at = lane.queue.indexOf(sender);
    // In the order they came (each is decided as if it came alone, first come first served);
    // the sender is in the batch it sends in any case.
    let members: Waiting<Q, R>[];
    if (at < MAX_BATCH) members = lane.queue.splice(0, MAX_BATCH);
    else {
      lane.queue.splice(at, 1);
      members = [...lane.queue.splice(0, MAX_BATCH - 1), sender];
    }
    const answered = (results: R[]) =>
      members.forEach((w, i) => {
        w.outcome =
          i < results.length
            ? { ok: true, value: results[i]! }
            : { ok: false, error: new Error('the store answered too few requests') };
      });
    const failed = (error: unknown) => members.forEach((w) => (w.outcome = { ok: false, error }));
    let sent: Promise<R[]>;
    try {
      sent = send(members.map((w) => w.item));
    } catch (e) {
      sent = Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const batch: Batch<Q, R> = {
      members,
      sentAt: Date.now(),
      done: sent.then(answered, failed).finally(() => {
        lane.endedAt = Date.now();
        // A call given up on was already taken out of its lane.
        if (lane.inFlight.delete(batch)) this.#retireIfIdle(object, lane);
      }),
    };
    for (const w of members) w.batch = batch;
    lane.inFlight.add(batch);
    lane.latest = batch;
    return batch;
  }

  #calls = 0;

  /**
   * Forgets lanes nothing has happened in for two deadlines: what they still hold belongs to
   * requests that went away (a live one waits at most a deadline before it sends), so an isolate
   * serving many keys does not keep one lane per key its clients abandoned.
   */
  #sweep(): void {
    const now = Date.now();
    for (const [object, lane] of this.#lanes)
      if (lane.inFlight.size === 0 && now - lane.endedAt > 2 * this.deadlineMs) this.#lanes.delete(object);
  }

  #retireIfIdle(object: string, lane: Lane<Q, R>): void {
    if (lane.inFlight.size === 0 && lane.queue.length === 0 && lane.waking === 0 && this.#lanes.get(object) === lane)
      this.#lanes.delete(object);
  }
}
