import { describe, expect, it } from 'vitest';
import { requestIdFrom, traceFrom, traceparentOf } from '../../../src/core/trace.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

const PARENT = '00f067aa0ba902b7';

describe('trace context', () => {
  it('continues a valid incoming trace with a new span id', () => {
    const t = traceFrom(new Headers({ traceparent: `00-${TRACE_ID}-${PARENT}-01`, tracestate: 'vendor=1' }));
    expect(t).toMatchObject({
      traceId: TRACE_ID,
      parentId: PARENT,
      flags: '01',
      sampled: true,
      tracestate: 'vendor=1',
    });
    expect(t.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(t.spanId).not.toBe(PARENT);
    const next = traceparentOf(t, 'a1b2c3d4e5f60718');
    expect(next).toBe(`00-${TRACE_ID}-a1b2c3d4e5f60718-01`);
  });

  it("keeps the caller's decision not to sample, whatever this hop's sampler says", () => {
    const t = traceFrom(new Headers({ traceparent: `00-${TRACE_ID}-${PARENT}-00` }), () => true);
    expect(t.sampled).toBe(false);
    expect(traceparentOf(t, t.spanId)).toMatch(/-00$/);
  });

  it('a new trace is sampled as the sampler decides, and says so in its flags', () => {
    const yes = traceFrom(new Headers(), () => true);
    const no = traceFrom(new Headers(), () => false);
    expect([yes.sampled, yes.flags]).toEqual([true, '01']);
    expect([no.sampled, no.flags]).toEqual([false, '00']);
    expect(traceFrom(new Headers()).sampled).toBe(false);
  });

  it.each([
    ['missing', undefined],
    ['garbage', 'hello'],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${PARENT}-01`],
    ['all-zero parent id', `00-${TRACE_ID}-${'0'.repeat(16)}-01`],
    ['forbidden version ff', `ff-${TRACE_ID}-${PARENT}-01`],
    ['upper-case hex', `00-${TRACE_ID.toUpperCase()}-${PARENT}-01`],
    ['version 00 with extra fields', `00-${TRACE_ID}-${PARENT}-01-extra`],
  ])('starts a new trace when the incoming one is %s', (_what, value) => {
    const t = traceFrom(new Headers(value ? { traceparent: value, tracestate: 'x=1' } : {}));
    expect(t.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(t.traceId).not.toBe(TRACE_ID);
    expect(t.parentId).toBeUndefined();
    expect(t.tracestate).toBeNull();
  });

  it('accepts a future version with extra fields', () => {
    expect(traceFrom(new Headers({ traceparent: `01-${TRACE_ID}-${PARENT}-01-more` })).traceId).toBe(TRACE_ID);
  });
});

describe('request id', () => {
  it('keeps a well-formed id and replaces a missing, oversized or unsafe one', () => {
    expect(requestIdFrom(new Headers({ 'x-request-id': 'abc-123_X.y:z' }))).toBe('abc-123_X.y:z');
    for (const bad of ['', 'has space', 'x'.repeat(129), 'quote"', 'new\\nline']) {
      const id = requestIdFrom(new Headers(bad ? { 'x-request-id': bad } : {}));
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});
