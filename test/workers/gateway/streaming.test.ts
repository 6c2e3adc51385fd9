import { describe, expect, it } from 'vitest';
import { call } from '../helpers.ts';
import { gateway, BASE } from './fixture.ts';

describe('gateway streaming', () => {
  it('streams request and response bodies without buffering them', async () => {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    const enc = new TextEncoder();
    // Not awaited: the write completes only once the gateway has started reading the body.
    const firstWritten = writer.write(enc.encode('first-chunk;'));
    // The response arrives while the request body is still open: nothing waited for the end.
    const res = await call(gateway, `${BASE}/echo/stream`, {
      method: 'POST',
      body: readable,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let seen = '';
    while (!seen.includes('first-chunk;')) {
      const { value, done } = await reader.read();
      if (done) throw new Error('response ended early');
      seen += dec.decode(value, { stream: true });
    }
    await firstWritten;
    await writer.write(enc.encode('second-chunk'));
    await writer.close();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += dec.decode(value, { stream: true });
    }
    expect(seen).toBe('first-chunk;second-chunk');
  });
});
