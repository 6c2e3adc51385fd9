import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { call, devToken, planFrom, type Echo } from '../helpers.ts';
import { gateway, BASE, echo } from './fixture.ts';

describe('gateway forwarding', () => {
  it('preserves method, path, query, body and end-to-end headers', async () => {
    const { res, seen } = await echo('/echo/items/42?sort=desc&tag=a&tag=b', {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-custom': 'kept', accept: 'application/json' },
      body: JSON.stringify({ hello: 'world' }),
    });
    expect(res.status).toBe(200);
    expect(seen.name).toBe('echo');
    expect(seen.method).toBe('PUT');
    expect(new URL(seen.url).pathname + new URL(seen.url).search).toBe('/echo/items/42?sort=desc&tag=a&tag=b');
    expect(seen.body).toBe('{"hello":"world"}');
    expect(seen.headers['x-custom']).toBe('kept');
    expect(seen.headers['content-type']).toBe('application/json');
    expect(res.headers.get('x-echo-name')).toBe('echo');
  });

  it('strips hop-by-hop headers and client-sent x-mesh-* headers, and proves who is calling', async () => {
    const { seen } = await echo('/echo', {
      headers: {
        connection: 'x-secret-hop',
        'x-secret-hop': '1',
        'keep-alive': 'timeout=5',
        'proxy-authorization': 'Basic eA==',
        'x-mesh-identity': 'forged',
        'x-mesh-sub': 'root',
        'x-mesh-user': 'forged',
      },
    });
    for (const h of ['x-secret-hop', 'keep-alive', 'proxy-authorization', 'x-mesh-sub', 'x-mesh-user'])
      expect(seen.headers).not.toHaveProperty(h);
    expect(seen.headers['x-mesh-route']).toBe('echo');
    // The gateway's own identity token, addressed to the service it calls.
    const identity = seen.headers['x-mesh-identity']!;
    expect(decodeProtectedHeader(identity)).toMatchObject({
      alg: 'EdDSA',
      typ: 'mesh-id+jwt',
      kid: expect.stringMatching(/^gateway\./),
    });
    const claims = decodeJwt(identity);
    expect(claims).toMatchObject({ iss: 'meshwork', sub: 'gateway', aud: 'echo' });
    expect(claims.exp! - claims.iat!).toBe(60);
  });

  it('sets x-request-id, keeping a valid incoming one, and returns it to the client', async () => {
    const kept = await echo('/echo', { headers: { 'x-request-id': 'client-req-1' } });
    expect(kept.seen.headers['x-request-id']).toBe('client-req-1');
    expect(kept.res.headers.get('x-request-id')).toBe('client-req-1');

    const fresh = await echo('/echo', { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(fresh.seen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(fresh.res.headers.get('x-request-id')).toBe(fresh.seen.headers['x-request-id']);
  });

  it('continues an incoming W3C trace with a new span, or starts one', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const { seen } = await echo('/echo', {
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, tracestate: 'congo=t61rcWkgMzE' },
    });
    expect(seen.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-(?!00f067aa0ba902b7)[0-9a-f]{16}-01$`));
    expect(seen.headers.tracestate).toBe('congo=t61rcWkgMzE');

    const started = await echo('/echo', {
      headers: { traceparent: 'not-a-traceparent', tracestate: 'congo=t61rcWkgMzE' },
    });
    // A new trace; not sampled, as this config exports no spans (no tracing.collector).
    expect(started.seen.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    // Without a valid traceparent the client's tracestate means nothing (W3C 3.3.1.1): dropped.
    expect(started.seen.headers).not.toHaveProperty('tracestate');
  });

  it('routes by hostname, headers and query through the gateway', async () => {
    expect((await echo('/echo')).seen.name).toBe('echo');
    expect((await call(gateway, 'https://a.tenant.example.com/echo')).headers.get('x-echo-name')).toBe('echo-v2');
    expect(
      (await call(gateway, `${BASE}/echo?beta=1`, { headers: { 'x-canary': 'yes' } })).headers.get('x-echo-name'),
    ).toBe('echo-v2');
    expect((await call(gateway, `${BASE}/echo?beta=1`)).headers.get('x-echo-name')).toBe('echo');
  });

  it('proxies a WebSocket both ways', async () => {
    const res = await call(gateway, `${BASE}/echo/socket`, {
      headers: { upgrade: 'websocket', connection: 'Upgrade' },
    });
    expect(res.status).toBe(101);
    // The handshake answer carries what every gateway answer does.
    expect(res.headers.get('x-mesh-config-version')).toBe('test-version');
    expect(res.headers.get('x-request-id')).toBeTruthy();
    const ws = res.webSocket!;
    ws.accept();
    const reply = new Promise<string>((resolve) => ws.addEventListener('message', (e) => resolve(String(e.data))));
    ws.send('ping');
    expect(await reply).toBe('echo:ping');
    ws.close();
  });

  it('adds x-forwarded-for/proto/host', async () => {
    const { seen } = await echo('/echo', {
      headers: { 'cf-connecting-ip': '203.0.113.9', 'x-forwarded-for': '198.51.100.1' },
    });
    expect(seen.headers['x-forwarded-for']).toBe('198.51.100.1, 203.0.113.9');
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-forwarded-host']).toBe('gw.example.com');
  });

  it('matches the path with encoded unreserved characters decoded, so /svc/%61dmin is /svc/admin', async () => {
    // The admin-only route has no backend with traffic: reaching it answers 503, the svc route 200.
    expect((await call(gateway, `${BASE}/svc/%61dmin`)).status).toBe(503);
    expect((await call(gateway, `${BASE}/svc/adm%69n`)).status).toBe(503);
    // Reserved characters stay encoded as they came.
    const { seen } = await echo('/svc/%7Euser/%3Bkeep');
    expect(new URL(seen.url).pathname).toBe('/svc/~user/%3Bkeep');
  });

  it('rewrites the matched prefix', async () => {
    const { seen } = await echo('/old/thing?x=1');
    expect(new URL(seen.url).pathname + new URL(seen.url).search).toBe('/new/thing?x=1');
  });

  it('passes redirects through instead of following them', async () => {
    const res = await call(gateway, `${BASE}/echo/redirect`);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/elsewhere');
  });

  it('returns backend headers minus hop-by-hop ones', async () => {
    const res = await call(gateway, `${BASE}/echo/hop-by-hop`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-backend')).toBe('kept');
    expect([...res.headers].filter(([n]) => n === 'set-cookie').map(([, v]) => v)).toEqual(['a=1', 'b=2; Path=/']);
    expect(res.headers.has('keep-alive')).toBe(false);
    expect(res.headers.has('x-hop')).toBe(false);
    expect(res.statusText).toBe('Fine');
    expect(await res.text()).toBe('ok');
  });

  it('forwards to a URL backend outside Workers over real HTTP, below its base path', async () => {
    const { res, seen } = await echo('/ext/a/b?q=1', {
      method: 'POST',
      body: 'payload',
      headers: { 'x-trace-me': 'yes' },
    });
    expect(res.status).toBe(200);
    expect(seen.name).toBe('url-backend');
    expect(seen.url).toBe('/base/ext/a/b?q=1');
    expect(seen.body).toBe('payload');
    expect(seen.headers['x-trace-me']).toBe('yes');
    expect(decodeJwt(seen.headers['x-mesh-identity']!)).toMatchObject({ sub: 'gateway', aud: 'external' });
  });
});

describe('admin tokens', () => {
  const withAdmins = createGateway({
    plan: planFrom(`
auth:
  issuers:
    local-dev: { issuer: https://dev.meshwork.local, audiences: [meshwork], algorithms: [ES256], jwks: { env: MESH_DEV_JWKS } }
admin:
  issuers: [local-dev]
services:
  echo: { backends: [{ binding: ECHO }] }
routes:
  - { name: open, matches: [{ path: { prefix: /open } }], service: echo }
  - { name: authed, matches: [{ path: { prefix: /authed } }], service: echo, auth: {} }
`),
  });

  it('are never forwarded: a backend could replay one against the admin API', async () => {
    const adminToken = await devToken({ aud: 'meshwork-admin', scope: 'mesh:admin' });
    const both = await devToken({ aud: ['meshwork', 'meshwork-admin'], scope: 'mesh:admin' });
    const user = await devToken({ scope: 'read:a' });
    const seen = async (path: string, token: string) => {
      const res = await call(withAdmins, `${BASE}${path}`, { headers: { authorization: `Bearer ${token}` } });
      return {
        status: res.status,
        authorization: res.status === 200 ? ((await res.json()) as Echo).headers.authorization : undefined,
      };
    };
    expect(await seen('/open', adminToken)).toEqual({ status: 200, authorization: undefined });
    // Valid as a user token too (its audiences include the user one): used, but not sent on.
    expect(await seen('/authed', both)).toEqual({ status: 200, authorization: undefined });
    // An admin-only token is no user token.
    expect((await seen('/authed', adminToken)).status).toBe(401);
    // User tokens are forwarded as before.
    expect(await seen('/open', user)).toEqual({ status: 200, authorization: `Bearer ${user}` });
    expect(await seen('/authed', user)).toEqual({ status: 200, authorization: `Bearer ${user}` });
  });
});
