import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { withMesh, type MeshContext, type MeshVariables } from '../../../src/wrapper/index.ts';
import { bundleFrom, call, identityHeaders, memberEnv, type Echo } from '../helpers.ts';

// The wrapped service under test is "service-a" (a member with a key in the test env); it is
// called as the gateway, and its mesh client calls the echo fixtures.
const config = bundleFrom(`
services:
  service-a:
    backends:
      - binding: SELF_NOT_USED
  public-svc:
    backends:
      - binding: SELF_NOT_USED
    policy:
      allowAnonymous: true
  echo:
    backends:
      - { binding: ECHO, version: v1, weight: 1 }
      - { binding: ECHO_V2, version: v2, weight: 0 }
  broken:
    backends:
      - binding: BROKEN
  unbound:
    backends:
      - binding: NOT_BOUND
routes: []
`);

function app() {
  const a = new Hono<{ Variables: MeshVariables }>();
  a.use('*', async (c, next) => {
    c.header('x-seen-by-middleware', c.var.mesh.service);
    await next();
  });
  a.get('/who', (c) =>
    c.json({
      service: c.var.mesh.service,
      caller: c.var.mesh.caller ?? null,
      route: c.var.mesh.route ?? null,
      requestId: c.var.mesh.requestId,
    }),
  );
  a.get('/call/:svc', async (c) => {
    const version = c.req.query('version');
    return c.var.mesh.fetch(c.req.param('svc'), '/echo/path?x=1', {
      method: 'POST',
      body: 'from caller-svc',
      headers: { 'x-mesh-caller': 'forged', 'x-mesh-sub': 'forged-user', 'x-app': 'kept', 'keep-alive': 'timeout=1' },
      ...(version ? { version } : {}),
    });
  });
  a.get('/throws', () => {
    throw new Error('handler bug with secret detail');
  });
  return a;
}

const service = withMesh(app(), { service: 'service-a', config });

const URL_ = 'https://service-a.internal';

const asServiceA = memberEnv('service-a');

/** Calls a wrapped service as the gateway would: with the gateway's identity token. */
async function callAsGateway(
  worker: Parameters<typeof call>[0],
  path: string,
  init: RequestInit = {},
  target = 'service-a',
): Promise<Response> {
  const headers = new Headers(init.headers);
  for (const [k, v] of Object.entries(await identityHeaders('gateway', target))) headers.set(k, v);
  return call(worker, `${URL_}${path}`, { ...init, headers }, asServiceA);
}

describe('withMesh around a Hono app', () => {
  it('gives middleware and handlers c.var.mesh, with the caller and route the mesh asserted', async () => {
    const res = await callAsGateway(service, '/who', { headers: { 'x-mesh-route': 'r1', 'x-request-id': 'rid-1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-seen-by-middleware')).toBe('service-a');
    expect(await res.json()).toEqual({ service: 'service-a', caller: 'gateway', route: 'r1', requestId: 'rid-1' });
  });

  it('answers 401 to a call without a mesh identity, before the handler runs', async () => {
    const res = await call(service, `${URL_}/who`, { headers: { 'x-request-id': 'rid-anon' } }, asServiceA);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      error: { code: 'unauthenticated_caller', message: expect.any(String), requestId: 'rid-anon' },
    });
  });

  it('a member other than the gateway cannot hand the handler forged x-mesh-* or claim headers', async () => {
    const a = new Hono<{ Variables: MeshVariables }>();
    a.get('/h', (c) =>
      c.json({
        sub: c.req.header('x-mesh-sub') ?? null,
        route: c.req.header('x-mesh-route') ?? null,
        caller: c.var.mesh.caller,
        user: c.var.mesh.user ?? null,
      }),
    );
    const svc = withMesh(a, { service: 'service-a', config });
    const headers = {
      ...(await identityHeaders('service-c', 'service-a')),
      'x-mesh-sub': 'admin',
      'x-mesh-route': 'admin-route',
      'x-mesh-scopes': 'root',
    };
    const res = await call(svc, `${URL_}/h`, { headers }, asServiceA);
    expect(await res.json()).toEqual({ sub: null, route: null, caller: 'service-c', user: null });
  });

  it('answers 401 to an identity token addressed to another service', async () => {
    const res = await callAsGateway(service, '/who', {}, 'service-b');
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_identity');
  });

  it('lets anonymous callers in where the service allows them, with no caller', async () => {
    const svc = withMesh(app(), { service: 'public-svc', config });
    const res = await call(svc, `${URL_}/who`, { headers: { 'x-mesh-route': 'forged' } }, asServiceA);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ caller: null, route: null });
  });

  it('mesh.fetch reaches the target over its binding with mesh headers set by the mesh', async () => {
    const traceId = 'aaaabbbbccccddddeeeeffff00001111';
    const res = await callAsGateway(service, '/call/echo', {
      headers: { 'x-request-id': 'rid-2', traceparent: `00-${traceId}-1111222233334444-01` },
    });
    expect(res.status).toBe(200);
    const seen = (await res.json()) as Echo;
    expect(seen.name).toBe('echo');
    expect(seen.method).toBe('POST');
    expect(new URL(seen.url).pathname + new URL(seen.url).search).toBe('/echo/path?x=1');
    expect(seen.body).toBe('from caller-svc');
    // service-a's own identity, addressed to echo; the handler's forged x-mesh-* headers are gone.
    expect(decodeJwt(seen.headers['x-mesh-identity']!)).toMatchObject({ sub: 'service-a', aud: 'echo' });
    expect(seen.headers).not.toHaveProperty('x-mesh-caller');
    expect(seen.headers).not.toHaveProperty('x-mesh-sub');
    expect(seen.headers).not.toHaveProperty('keep-alive');
    expect(seen.headers['x-app']).toBe('kept');
    expect(seen.headers['x-request-id']).toBe('rid-2');
    expect(seen.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  });

  it('mesh.fetch can pin a version, even one with weight 0', async () => {
    const res = await callAsGateway(service, '/call/echo?version=v2');
    expect(((await res.json()) as Echo).name).toBe('echo-v2');
  });

  it.each([
    ['unknown service', 'nope', 503, 'unknown_service'],
    ['unknown version', 'echo?version=v9', 503, 'no_backend'],
    ['binding not bound here', 'unbound', 503, 'no_backend'],
    ['backend that throws', 'broken', 502, 'bad_gateway'],
  ])('mesh.fetch answers a %s with the mesh JSON error', async (_what, target, status, code) => {
    const res = await callAsGateway(service, `/call/${target}`, { headers: { 'x-request-id': 'rid-err' } });
    expect(res.status).toBe(status);
    expect(await res.json()).toEqual({ error: { code, message: expect.any(String), requestId: 'rid-err' } });
  });

  it('turns a handler exception into a JSON 500 without the exception text', async () => {
    const res = await callAsGateway(service, '/throws', { headers: { 'x-request-id': 'rid-500' } });
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('internal');
    expect(body.error.message).not.toContain('secret');
  });

  it('answers unknown paths with the JSON 404', async () => {
    const res = await callAsGateway(service, '/missing', { headers: { 'x-request-id': 'rid-404' } });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { code: 'not_found', message: expect.any(String), requestId: 'rid-404' },
    });
  });

  it('serves routes the app adds after withMesh, and keeps a non-strict app non-strict', async () => {
    const a = new Hono({ strict: false });
    const svc = withMesh(a, { service: 'service-a', config });
    a.get('/late', (c) => c.text('late route'));
    expect(await (await callAsGateway(svc, '/late/')).text()).toBe('late route');
  });

  it("keeps the app's own error handler", async () => {
    const a = new Hono();
    a.get('/boom', () => {
      throw new Error('x');
    });
    a.onError((_e, c) => c.text('custom', 418));
    const res = await callAsGateway(withMesh(a, { service: 'service-a', config }), '/boom');
    expect(res.status).toBe(418);
  });
});

describe('withMesh around a plain fetch handler', () => {
  it('passes the mesh context as the fourth argument', async () => {
    let seen: MeshContext | undefined;
    const svc = withMesh(
      async (_req, _env, _ctx, mesh) => {
        seen = mesh;
        return mesh.fetch('echo', '/plain');
      },
      { service: 'service-a', config },
    );
    const res = await callAsGateway(svc, '/x');
    expect(decodeJwt(((await res.json()) as Echo).headers['x-mesh-identity']!).sub).toBe('service-a');
    expect(seen?.caller).toBe('gateway');
  });

  it('throws a clear error to the handler for a relative path in mesh.fetch', async () => {
    let thrown: unknown;
    const svc = withMesh(
      async (_r, _e, _c, mesh) => {
        try {
          return await mesh.fetch('echo', 'no-slash');
        } catch (e) {
          thrown = e;
          throw e;
        }
      },
      { service: 'service-a', config },
    );
    const res = await callAsGateway(svc, '/x');
    expect(res.status).toBe(500);
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as Error).message).toBe('mesh.fetch("echo", path): path must start with "/", got "no-slash"');
  });
});

describe('inbound policies', () => {
  it('run in order before the handler; one that answers stops the request', async () => {
    const order: string[] = [];
    const svc = withMesh(
      () => {
        order.push('handler');
        return new Response('handled');
      },
      {
        service: 'service-a',
        config,
        policies: [
          () => void order.push('first'),
          (req) => {
            order.push('second');
            return req.headers.get('x-block') ? new Response('blocked', { status: 403 }) : undefined;
          },
        ],
      },
    );
    expect(await (await callAsGateway(svc, '/')).text()).toBe('handled');
    expect(order).toEqual(['first', 'second', 'handler']);
    order.length = 0;
    const blocked = await callAsGateway(svc, '/', { headers: { 'x-block': '1' } });
    expect(blocked.status).toBe(403);
    expect(order).toEqual(['first', 'second']);
  });
});

describe('withMesh configuration errors', () => {
  it('refuses a service that is not in the mesh config', () => {
    expect(() => withMesh(() => new Response(), { service: 'ghost', config })).toThrow(
      /service "ghost" is not defined/,
    );
  });

  it('uses the bundled routes/ config by default', async () => {
    // routes/mesh.yaml sends service-b traffic to SERVICE_B_V1/V2, which this test env lacks.
    const svc = withMesh((_r, _e, _c, mesh) => mesh.fetch('service-b', '/service-b', { version: 'v2' }), {
      service: 'service-a',
    });
    const res = await callAsGateway(svc, '/', {});
    // Through the real binding to the example service-b v2, configured in routes/mesh.yaml.
    expect(res.status).toBe(200);
    expect(res.headers.get('x-service-version')).toBe('v2');
  });
});
