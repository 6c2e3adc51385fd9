/**
 * The path and host routes match are the ones backends receive: no spelling of a protected path
 * reaches a backend past a route that protects it, and no request makes routing expensive.
 */
import { describe, expect, it } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { MAX_PATH_LENGTH, MAX_PATH_SEGMENTS } from '../../../src/core/path.ts';
import { call, devToken, planFrom, type Echo } from '../helpers.ts';

const gateway = createGateway({
  plan: planFrom(`
auth:
  issuers:
    local-dev: { issuer: https://dev.meshwork.local, audiences: [meshwork], algorithms: [ES256], jwks: { env: MESH_DEV_JWKS } }
services:
  echo: { backends: [{ binding: ECHO }] }
routes:
  - name: admin
    matches: [{ path: { prefix: /probe/admin } }]
    service: echo
    auth: {}
  - name: public
    matches: [{ path: { prefix: /probe } }]
    service: echo
  - name: secure-host
    hostnames: [secure.example]
    matches: [{ path: { prefix: / } }]
    service: echo
    auth: {}
  - name: anywhere
    matches: [{ path: { prefix: / } }]
    service: echo
`),
});

const get = (url: string, headers: Record<string, string> = {}) => call(gateway, url, { headers });

describe('one path for routes and backends', () => {
  it('runs of "/" are one: /probe//admin is /probe/admin, for the router and the backend alike', async () => {
    for (const path of [
      '/probe//admin',
      '///probe///admin',
      '/probe/.//admin',
      '/probe/./admin',
      '/probe/x/../admin',
      '//probe/admin/',
    ]) {
      const res = await get(`https://gw.example.com${path}`);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate'), path).toContain('Bearer');
    }
    const token = await devToken();
    const res = await get('https://gw.example.com/probe//admin//x', { authorization: `Bearer ${token}` });
    expect(res.status).toBe(200);
    expect(new URL(((await res.json()) as Echo).url).pathname).toBe('/probe/admin/x');
    const open = await get('https://gw.example.com//probe//open');
    expect(open.headers.get('x-mesh-route') ?? ((await open.json()) as Echo).headers['x-mesh-route']).toBe('public');
  });

  it('an encoded "/", "\\\\" or control character is refused (400): a backend decoding it would see another path', async () => {
    for (const path of ['/probe%2Fadmin', '/probe/%2fadmin', '/probe%5Cadmin', '/probe/admin%00', '/probe/%1b[31m']) {
      const res = await get(`https://gw.example.com${path}`);
      expect(res.status, path).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('bad_request');
    }
  });

  it('paths beyond the bounds answer 414 at once (30,000 segments, over 8 KiB)', async () => {
    const many = await get(`https://gw.example.com/probe${'/a'.repeat(30_000)}`);
    expect(many.status).toBe(414);
    expect(((await many.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'uri_too_long',
      message: `request path longer than ${MAX_PATH_LENGTH} bytes`,
    });
    const deep = await get(`https://gw.example.com/probe${'/a'.repeat(MAX_PATH_SEGMENTS)}`);
    expect(deep.status).toBe(414);
    const ok = await get(`https://gw.example.com/probe${'/a'.repeat(MAX_PATH_SEGMENTS - 1)}`);
    expect(ok.status).toBe(200);
  });
});

describe('one host for routes', () => {
  it('a fully qualified host is the host; one with an empty label is refused, never matched elsewhere', async () => {
    expect((await get('https://secure.example/x')).status).toBe(401);
    expect((await get('https://secure.example./x')).status).toBe(401);
    for (const host of ['secure.example..', 'secure..example', '.secure.example']) {
      const res = await get(`https://${host}/x`);
      expect(res.status, host).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
        'the request host is not a valid host name',
      );
    }
  });
});
