import { describe, expect, it } from 'vitest';
import { Coalescer, MAX_BATCH, StoreTimeout, WAIT_DEADLINE_MS } from '../../../src/ratelimit/coalesce.ts';

/** A store that answers each batch when told to, recording what it was sent. */
function manualStore() {
  const batches: number[][] = [];
  const pending: Array<{ batch: number[]; answer: (r: string[]) => void; fail: (e: Error) => void }> = [];
  const send = (batch: number[]) =>
    new Promise<string[]>((answer, fail) => {
      batches.push(batch);
      pending.push({ batch, answer, fail });
    });
  const answerNext = async (how: (batch: number[]) => string[] = (b) => b.map((n) => `r${n}`)) => {
    const p = pending.shift()!;
    p.answer(how(p.batch));
    await tick();
  };
  const failNext = async (e: Error) => {
    pending.shift()!.fail(e);
    await tick();
  };
  return { batches, pending, send, answerNext, failNext, inFlight: () => pending.length };
}

/** A waiting request steps through a timer of its own before it acts: a few macrotasks. */
const tick = async () => {
  for (let i = 0; i < 4; i++) await new Promise((r) => setTimeout(r, 0));
};

describe('coalescing store calls', () => {
  it('an unloaded object gets its call at once; requests that come meanwhile go together in the next call', async () => {
    const c = new Coalescer<number, string>();
    const store = manualStore();
    const first = c.call('obj', 1, store.send);
    await tick();
    expect(store.batches).toEqual([[1]]);
    const rest = [2, 3, 4].map((n) => c.call('obj', n, store.send));
    await tick();
    expect(store.batches).toEqual([[1]]); // one call in flight per object
    await store.answerNext();
    expect(await first).toBe('r1');
    expect(store.batches).toEqual([[1], [2, 3, 4]]);
    await store.answerNext();
    expect(await Promise.all(rest)).toEqual(['r2', 'r3', 'r4']);
    expect(c.inFlight).toBe(0);
  });

  it('objects do not wait for each other', async () => {
    const c = new Coalescer<number, string>();
    const store = manualStore();
    void c.call('a', 1, store.send);
    void c.call('b', 2, store.send);
    await tick();
    expect(store.batches).toEqual([[1], [2]]);
    expect(c.inFlight).toBe(2);
  });

  it('a failed call fails the requests in it, and only them: the next batch still goes', async () => {
    const c = new Coalescer<number, string>();
    const store = manualStore();
    const first = c.call('obj', 1, store.send).catch((e: Error) => e.message);
    await tick();
    const second = c.call('obj', 2, store.send);
    await store.failNext(new Error('store down'));
    expect(await first).toBe('store down');
    expect(store.batches).toEqual([[1], [2]]);
    await store.answerNext();
    expect(await second).toBe('r2');
  });

  it('a send that throws at once fails its batch the same way', async () => {
    const c = new Coalescer<number, string>();
    await expect(
      c.call('obj', 1, () => {
        throw new Error('binding missing');
      }),
    ).rejects.toThrow('binding missing');
    expect(c.inFlight).toBe(0);
  });

  it('an answer with too few results fails the unanswered requests', async () => {
    const c = new Coalescer<number, string>();
    const store = manualStore();
    void c.call('obj', 0, store.send);
    await tick();
    const queued = [1, 2].map((n) =>
      c.call('obj', n, store.send).then(
        (r) => r,
        (e: Error) => e.message,
      ),
    );
    await store.answerNext();
    await store.answerNext((b) => [`r${b[0]}`]);
    expect(await Promise.all(queued)).toEqual(['r1', 'the store answered too few requests']);
  });

  it(`a queue that reaches ${MAX_BATCH} goes at once, beside the call in flight; the rest follows, in order`, async () => {
    const c = new Coalescer<number, string>();
    const store = manualStore();
    void c.call('obj', -1, store.send);
    await tick();
    const many = Array.from({ length: MAX_BATCH + 10 }, (_, n) => c.call('obj', n, store.send));
    await tick();
    expect(store.batches.map((b) => b.length)).toEqual([1, MAX_BATCH]); // two in flight
    await store.answerNext();
    // The ten that came after the full batch wait behind it, the latest call.
    expect(store.batches.map((b) => b.length)).toEqual([1, MAX_BATCH]);
    await store.answerNext();
    expect(store.batches.map((b) => b.length)).toEqual([1, MAX_BATCH, 10]);
    await store.answerNext();
    expect(store.batches.flat().slice(1)).toEqual(Array.from({ length: MAX_BATCH + 10 }, (_, n) => n));
    expect((await Promise.all(many)).at(-1)).toBe(`r${MAX_BATCH + 9}`);
    expect(c.inFlight).toBe(0);
  });

  it('a batch whose send the runtime refuses fails as a store failure; the next batch still goes', async () => {
    const c = new Coalescer<number, string>();
    const store = manualStore();
    void c.call('obj', 0, store.send);
    await tick();
    const gone = new Error('Cannot perform I/O on behalf of a different request. I/O objects ...');
    // The first queued request wakes first and sends the queue; its request has gone away.
    const refused = [c.call('obj', 1, () => Promise.reject(gone)), c.call('obj', 2, store.send)].map((p) =>
      p.catch((e: unknown) => e),
    );
    await store.answerNext();
    expect(await Promise.all(refused)).toEqual([gone, gone]);
    const next = c.call('obj', 3, store.send);
    await tick();
    expect(store.batches).toEqual([[0], [3]]);
    await store.answerNext();
    expect(await next).toBe('r3');
    expect(c.inFlight).toBe(0);
  });

  it('every queued request wakes when the call ahead ends; the first to run sends the queue, once, with its own send', async () => {
    const c = new Coalescer<number, string>();
    const store = manualStore();
    const sends: string[] = [];
    const by = (who: string) => (batch: number[]) => {
      sends.push(who);
      return store.send(batch);
    };
    void c.call('obj', 0, by('zero'));
    await tick();
    const queued = [c.call('obj', 1, by('one')), c.call('obj', 2, by('two')), c.call('obj', 3, by('three'))];
    await store.answerNext();
    expect(sends).toEqual(['zero', 'one']);
    expect(store.batches).toEqual([[0], [1, 2, 3]]);
    await store.answerNext();
    expect(await Promise.all(queued)).toEqual(['r1', 'r2', 'r3']);
    expect(c.inFlight).toBe(0);
  });

  it('nothing waiting on a call is settled by another request: each waiting request reads its answer after a timer of its own', async () => {
    const c = new Coalescer<number, string>();
    const store = manualStore();
    void c.call('obj', 0, store.send);
    await new Promise((r) => setTimeout(r, 0));
    let answered = false;
    void c.call('obj', 1, store.send); // sends the next batch, for both
    const queued = c.call('obj', 2, store.send).then((r) => ((answered = true), r));
    await store.answerNext();
    expect(store.batches).toEqual([[0], [1, 2]]);
    store.pending[0]!.answer(['r1', 'r2']);
    // The sender's answer arriving resolves nothing by itself, not even in the same turn...
    await Promise.resolve();
    await Promise.resolve();
    expect(answered).toBe(false);
    // ...the request itself picks it up, in a later event of its own.
    await tick();
    expect(answered).toBe(true);
    expect(await queued).toBe('r2');
  });

  describe('deadlines (a call whose sender went away never comes back)', () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

    it(`requests queued behind a call out for the deadline (${WAIT_DEADLINE_MS} ms by default) are sent without it, and answered`, async () => {
      const c = new Coalescer<number, string>(40);
      const store = manualStore();
      const lost = c.call('obj', 0, store.send).catch((e: unknown) => e); // its answer never comes
      await tick();
      const waiting = c.call('obj', 1, store.send);
      await sleep(60);
      // Its sender's own wait ends at the deadline too.
      expect(await lost).toBeInstanceOf(StoreTimeout);
      expect(store.batches).toEqual([[0], [1]]);
      await store.answerNext((b) => b.map((n) => `late ${n}`)); // the lost call, late: changes nothing
      await store.answerNext();
      expect(await waiting).toBe('r1');
      expect(c.inFlight).toBe(0);
    });

    it('a request whose own call is out for the deadline fails as a store failure, counted from when it was sent', async () => {
      const c = new Coalescer<number, string>(40);
      const store = manualStore();
      void c.call('obj', 0, store.send);
      await tick();
      const mine = c.call('obj', 1, store.send).catch((e: unknown) => e);
      await sleep(25);
      await store.answerNext(); // 1 is sent now, 25 ms after it queued; its answer never comes
      await sleep(25); // 50 ms after queueing, 25 after sending: still waiting
      expect(store.batches).toEqual([[0], [1]]);
      await sleep(30);
      const e = await mine;
      expect(e).toBeInstanceOf(StoreTimeout);
      expect((e as Error).message).toBe('no answer from the rate-limit store within 40 ms');
      // The lane was given up: the next request goes at once.
      const next = c.call('obj', 2, store.send);
      await tick();
      expect(store.batches).toEqual([[0], [1], [2]]);
      store.pending.shift(); // 1's call: never answered
      await store.answerNext();
      expect(await next).toBe('r2');
      expect(c.inFlight).toBe(0);
    });

    it('waiting long behind healthy calls is not a failure', async () => {
      const c = new Coalescer<number, string>(40);
      const store = manualStore();
      void c.call('obj', 0, store.send);
      await tick();
      const queued = c.call('obj', 1, store.send);
      await sleep(30);
      await store.answerNext(); // 0 answered after 30 ms; 1 sent
      await sleep(30); // 60 ms since 1 queued, 30 since it was sent
      await store.answerNext();
      expect(await queued).toBe('r1');
    });

    it("the sender keeps its call alive with its request's waitUntil until every request in the batch has its answer", async () => {
      const c = new Coalescer<number, string>();
      const store = manualStore();
      const kept: string[] = [];
      const keep = (who: string) => (p: Promise<unknown>) => void p.then(() => kept.push(who));
      void c.call('obj', 0, store.send, keep('sender'));
      await tick();
      void c.call('obj', 1, store.send, keep('queued'));
      await tick();
      expect(kept).toEqual([]);
      await store.answerNext();
      expect(kept).toEqual(['sender']);
      await store.answerNext();
      expect(kept).toEqual(['sender', 'queued']); // the queued request, once it sent its batch
    });
  });
});
