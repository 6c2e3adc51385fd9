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
    await new Promise((r) => setTimeout(r, 0));
  };
  const failNext = async (e: Error) => {
    pending.shift()!.fail(e);
    await new Promise((r) => setTimeout(r, 0));
  };
  return { batches, pending, send, answerNext, failNext, inFlight: () => pending.length };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

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

  it(`at most ${MAX_BATCH} requests per call; a longer queue takes several, in order`, async () => {
    const c = new Coalescer<number, string>();
    const store = manualStore();
    void c.call('obj', -1, store.send);
    await tick();
    const many = Array.from({ length: MAX_BATCH + 10 }, (_, n) => c.call('obj', n, store.send));
    await store.answerNext();
    await store.answerNext();
    await store.answerNext();
    expect(store.batches.map((b) => b.length)).toEqual([1, MAX_BATCH, 10]);
    expect(store.batches.flat().slice(1)).toEqual(Array.from({ length: MAX_BATCH + 10 }, (_, n) => n));
    expect((await Promise.all(many)).at(-1)).toBe(`r${MAX_BATCH + 9}`);
  });

  describe('deadlines (a call whose sender went away never comes back)', () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

    it(`waiting requests fail as a store failure after the deadline (${WAIT_DEADLINE_MS} ms by default), and the object's next batch goes without the lost call`, async () => {
      const c = new Coalescer<number, string>(40);
      const store = manualStore();
      void c.call('obj', 0, store.send); // its answer never comes
      await tick();
      const waiting = c.call('obj', 1, store.send).catch((e: unknown) => e);
      await sleep(60);
      const e = await waiting;
      expect(e).toBeInstanceOf(StoreTimeout);
      expect((e as Error).message).toBe('no answer from the rate-limit store within 40 ms');
      // The lane was given up: a new request is sent at once, not queued behind the lost call.
      const after = c.call('obj', 2, store.send);
      await tick();
      expect(store.batches).toEqual([[0], [2]]);
      store.pending.shift(); // the lost call's answer never comes
      await store.answerNext();
      expect(await after).toBe('r2');
      expect(c.inFlight).toBe(0);
    });

    it('requests queued behind a lost call that have not timed out go in the next batch; a late answer to the lost call changes nothing', async () => {
      const c = new Coalescer<number, string>(40);
      const store = manualStore();
      const lost = c.call('obj', 0, store.send);
      await tick();
      const early = c.call('obj', 1, store.send).catch((e: unknown) => e);
      await sleep(25);
      const late = c.call('obj', 2, store.send);
      await sleep(25); // 1's deadline passed, 2's not
      expect(await early).toBeInstanceOf(StoreTimeout);
      expect(store.batches).toEqual([[0], [2]]);
      // The lost call answers after all: its sender gets its answer, the lane is not disturbed.
      await store.answerNext();
      expect(await lost).toBe('r0');
      expect(c.inFlight).toBe(1);
      await store.answerNext();
      expect(await late).toBe('r2');
      expect(c.inFlight).toBe(0);
    });

    it('an answered request never times out later, and its timer is gone', async () => {
      const c = new Coalescer<number, string>(30);
      const store = manualStore();
      void c.call('obj', 0, store.send);
      await tick();
      const second = c.call('obj', 1, store.send);
      await store.answerNext();
      await store.answerNext();
      expect(await second).toBe('r1');
      await sleep(50);
      expect(c.inFlight).toBe(0);
      expect(store.batches).toEqual([[0], [1]]);
    });

    it("the sender keeps its call alive with the request's waitUntil, until every request in the batch has its answer", async () => {
      const c = new Coalescer<number, string>();
      const store = manualStore();
      const kept: Array<Promise<unknown>> = [];
      const first = c.call('obj', 0, store.send, (p) => kept.push(p));
      await tick();
      expect(kept).toHaveLength(1);
      let done = false;
      void kept[0]!.then(() => (done = true));
      await tick();
      expect(done).toBe(false);
      await store.answerNext();
      expect(await first).toBe('r0');
      expect(done).toBe(true);
    });
  });
});
