import { describe, expect, it } from 'vitest';
import { childTraceparent, requestIdFrom, traceFrom } from '../../../src/core/trace.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

const PARENT = '00f067aa0ba902b7';

describe('trace context', () => {
  it('continues a valid incoming trace with a new span id', () => {
    const t = traceFrom(new Headers({ traceparent: `00-${TRACE_ID}-${PARENT}-01`, tracestate: 'vendor=1' }));
    expect(t).toMatchObject({ traceId: TRACE_ID, parentId: PARENT, flags: '01', tracestate: 'vendor=1' });
    const next = childTraceparent(t);
    expect(next).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    expect(next).not.toContain(PARENT);
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
