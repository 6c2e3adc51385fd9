/**
 * Coalescing store calls: while an isolate has a call in flight to an object, the requests for
 * that object that come meanwhile wait, and go together in the next call, which decides them one
 * by one in one event (RateLimiter.takeMany). With no call in flight a request goes at once, so
 * an unloaded isolate waits no longer than before; a loaded one makes a call per round trip per
 * object instead of one per request. Each request still gets its own decision. A queue that
 * reaches MAX_BATCH goes at once, beside the call in flight, so a burst never waits for rounds.
 *
 * What the Workers runtime asks of code that waits across requests:
 * - A batch is sent by one of its own requests, from that request's context (which waits for
 *   the answer anyway), never by a request already answered: I/O belongs to the request that
 *   started it, and a request that kept sending for others could outlive what it is allowed.
 *   The sender keeps its call alive with `keepAlive` (its waitUntil) if its client goes away.
 *   A request cancelled while it waited may be unable to send: two candidates are asked, and a
 *   sender whose I/O the runtime refuses fails alone while the others go on.
 * - A request whose only pending work is a promise another request will settle is taken for hung
 *   and cancelled. So a waiting request holds a timer of its own.
 * - Deadlines: a request whose call has been out for WAIT_DEADLINE_MS fails as a store failure
 *   would (the policy's onStoreFailure decides). A call out that long is given up on: requests
 *   queued behind it are sent without waiting for it. So a lost call (its sender's context
 *   ended) delays an object's requests by at most the deadline, never for good, and a request
 *   that waited long behind healthy calls is never failed for it.
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

interface Waiting<Q, R> {
  item: Q;
  send: SendBatch<Q, R>;
  keepAlive: ((p: Promise<unknown>) => void) | undefined;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
  /** Asks this request to send `batch` (resolved from another request's context). */
  lead: (batch: Batch<Q, R>) => void;
  /** The call it is in, once sent. */
  batch: Batch<Q, R> | undefined;
}

interface Batch<Q, R> {
  members: Waiting<Q, R>[];
  sentAt: number;
  /** Sent by one of its candidates already. */
  claimed: boolean;
}

interface Lane<Q, R> {
  inFlight: Set<Batch<Q, R>>;
  /** Waiting for the next call. */
  queue: Waiting<Q, R>[];
}

/** Most items in one call (bounds the message size). */
export const MAX_BATCH = 128;
/** How long a request's call may be out before it fails as a store failure. */
export const WAIT_DEADLINE_MS = 5_000;

/** What workerd throws when a request's context is used for I/O after that request is gone. */
function isForeignContextError(e: unknown): boolean {
  return e instanceof Error && e.message.startsWith('Cannot perform I/O on behalf of a different request');
}

export class Coalescer<Q, R> {
  /** A lane per object with a call in flight; an idle object has none. */
  readonly #lanes = new Map<string, Lane<Q, R>>();

  constructor(readonly deadlineMs = WAIT_DEADLINE_MS) {}

  /** Objects with a call in flight now (tests). */
  get inFlight(): number {
    return this.#lanes.size;
  }

  call(object: string, item: Q, send: SendBatch<Q, R>, keepAlive?: (p: Promise<unknown>) => void): Promise<R> {
    const answer = new Promise<R>((resolve, reject) => {
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
      const self: Waiting<Q, R> = {
        item,
        send,
        keepAlive,
        resolve: settle(resolve),
        reject: settle(reject),
        // Nothing in flight: it sends its own call, now, in its own context.
        lead: (batch) => this.#send(object, batch, self),
        batch: undefined,
      };
      const lane = this.#lanes.get(object);
      if (!lane) {
        const fresh: Lane<Q, R> = { inFlight: new Set(), queue: [] };
        this.#lanes.set(object, fresh);
        this.#start(fresh, [self]);
        return;
      }
      // Queued: asked later, by another request; the promise is created here, so the batch it
      // may send is sent from this request's context.
      void new Promise<Batch<Q, R>>((r) => (self.lead = r)).then((batch) => this.#send(object, batch, self));
      lane.queue.push(self);
      // The timer runs in this request's context (the runtime sees it waiting on something).
      const arm = (ms: number) => {
        timer = setTimeout(() => {
          if (!settled) this.#check(object, self, arm);
        }, ms);
      };
      arm(this.deadlineMs);
      if (lane.queue.length >= MAX_BATCH) this.#start(lane, lane.queue.splice(0, MAX_BATCH));
    });
    return answer;
  }

  /**
   * Two candidates may send a batch, the two requests that came last (the least likely to have
   * been cancelled while they waited: a cancelled request's context may never run again); the
   * first to run sends it.
   */
  #start(lane: Lane<Q, R>, members: Waiting<Q, R>[]): void {
    const batch: Batch<Q, R> = { members, sentAt: Date.now(), claimed: false };
    for (const w of members) w.batch = batch;
    lane.inFlight.add(batch);
    members.at(-1)!.lead(batch);
    if (members.length > 1) members.at(-2)!.lead(batch);
  }

  #send(object: string, batch: Batch<Q, R>, sender: Waiting<Q, R>): void {
    if (batch.claimed) return;
    batch.claimed = true;
    const { members } = batch;
    const answered = (results: R[]) => {
      members.forEach((w, i) =>
        i < results.length ? w.resolve(results[i]!) : w.reject(new Error('the store answered too few requests')),
      );
    };
    let handOver: Waiting<Q, R>[] | undefined;
    const failed = (e: unknown) => {
      // The sender's request was cancelled (its client went away) after it was chosen: its
      // context can no longer do I/O. It alone fails; the others go in a batch of their own.
      if (members.length > 1 && isForeignContextError(e)) {
        sender.reject(e);
        handOver = members.filter((w) => w !== sender);
      } else members.forEach((w) => w.reject(e));
    };
    let sent: Promise<R[]>;
    try {
      sent = sender.send(members.map((w) => w.item));
    } catch (e) {
      sent = Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const done = sent.then(answered, failed).finally(() => {
      const lane = this.#lanes.get(object);
      // A call given up on was already taken out of its lane.
      if (!lane?.inFlight.delete(batch)) return;
      if (handOver) this.#start(lane, handOver);
      else this.#advance(object, lane);
    });
    try {
      sender.keepAlive?.(done);
    } catch {
      // A cancelled request's waitUntil may refuse: the batch goes on without it.
    }
  }

  /** Sends the next batch from the queue, or retires an idle lane. */
  #advance(object: string, lane: Lane<Q, R>): void {
    if (lane.queue.length > 0) this.#start(lane, lane.queue.splice(0, MAX_BATCH));
    else if (lane.inFlight.size === 0) this.#lanes.delete(object);
  }

  /** A waiting request's timer: fail it if its own call is overdue; give up calls that are. */
  #check(object: string, w: Waiting<Q, R>, arm: (ms: number) => void): void {
    const now = Date.now();
    const lane = this.#lanes.get(object);
    if (w.batch) {
      const age = now - w.batch.sentAt;
      if (age < this.deadlineMs) return arm(this.deadlineMs - age);
      w.reject(new StoreTimeout(this.deadlineMs));
      if (lane?.inFlight.delete(w.batch)) this.#advance(object, lane);
      return;
    }
    // Still queued: the calls ahead of it are overdue and will not come back; go without them.
    if (lane) {
      for (const b of lane.inFlight) if (now - b.sentAt >= this.deadlineMs) lane.inFlight.delete(b);
      if (lane.inFlight.size === 0) this.#advance(object, lane);
    }
    arm(this.deadlineMs);
  }
}
