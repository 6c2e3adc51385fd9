import { describe, expect, it } from 'vitest';
import { CLIENT_FORWARDING, setForwarded, stripHopByHop } from '../../../src/core/headers.ts';

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
