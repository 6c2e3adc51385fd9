import { describe, expect, it } from 'vitest';
import { CLIENT_FORWARDING, setForwarded, stripHopByHop } from '../../src/mesh/headers.ts';
import { childTraceparent, requestIdFrom, traceFrom } from '../../src/mesh/trace.ts';

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

describe('end-to-end headers', () => {
  function stripped(init: Record<string, string>, stripMesh: boolean): string[] {
    const h = new Headers(init);
    stripHopByHop(h, stripMesh);
    return [...h.keys()].sort();
  }

  it('drops hop-by-hop headers and those the Connection header names', () => {
    expect(
      stripped(
        {
          connection: 'keep-alive, X-Private',
          'keep-alive': 'timeout=5',
          'x-private': '1',
          te: 'trailers',
          'proxy-authorization': 'Basic x',
          upgrade: 'h2c',
          accept: 'text/plain',
        },
        true,
      ),
    ).toEqual(['accept']);
  });

  it('keeps the Upgrade header of a WebSocket handshake', () => {
    expect(stripped({ connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'k' }, true)).toEqual([
      'sec-websocket-key',
      'upgrade',
    ]);
  });

  it('strips x-mesh-* only when asked', () => {
    expect(stripped({ 'x-mesh-sub': 'alice' }, false)).toEqual(['x-mesh-sub']);
    expect(stripped({ 'x-mesh-sub': 'alice', 'X-Mesh-Caller': 'x', 'x-other': '1' }, true)).toEqual(['x-other']);
  });

  it('appends the client to X-Forwarded-For and records proto and host', () => {
    const h = new Headers({ 'x-forwarded-for': '10.0.0.1' });
    setForwarded(h, new URL('https://api.example.com:8443/x'), '203.0.113.7');
    expect(h.get('x-forwarded-for')).toBe('10.0.0.1, 203.0.113.7');
    expect(h.get('x-forwarded-proto')).toBe('https');
    expect(h.get('x-forwarded-host')).toBe('api.example.com:8443');
  });

  it('drops forwarding headers the client could use to mislead a service', () => {
    const h = new Headers({
      forwarded: 'for=1.2.3.4',
      'x-real-ip': '1.2.3.4',
      'x-forwarded-port': '1',
      'x-forwarded-prefix': '/admin',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'evil',
    });
    stripHopByHop(h, true, CLIENT_FORWARDING);
    setForwarded(h, new URL('https://api.example.com/x'), null);
    expect([...h].sort()).toEqual([
      ['x-forwarded-host', 'api.example.com'],
      ['x-forwarded-proto', 'https'],
    ]);
  });
});
