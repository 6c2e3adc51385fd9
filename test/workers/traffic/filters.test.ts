/**
 * Route filters, faults and redirects through the gateway, with the echo backend showing what it
 * received. The header and redirect cases are Gateway API's conformance cases
 * (httproute-request-header-modifier, -response-header-modifier, -rewrite-host, -redirect-path),
 * translated by hand into routes/.
 */
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { bundleFrom, call, planFrom, type Echo } from '../helpers.ts';
import { withMesh } from '../../../src/wrapper/index.ts';

const gateway = createGateway({
  plan: planFrom(`
services:
  echo: { backends: [{ binding: ECHO }] }
routes:
  - name: set
    matches: [{ path: { prefix: /set } }]
    service: echo
    requestHeaders: { set: [{ name: X-Header-Set, value: set-overwrites-values }] }
  - name: add
    matches: [{ path: { prefix: /add } }]
    service: echo
    requestHeaders: { add: [{ name: X-Header-Add, value: add-appends-values }] }
  - name: remove
    matches: [{ path: { prefix: /remove } }]
    service: echo
    requestHeaders: { remove: [X-Header-Remove] }
  - name: response
    matches: [{ path: { prefix: /response } }]
    service: echo
    requestHeaders: { set: [{ name: x-request-edit, value: yes }] }
    responseHeaders:
      set: [{ name: X-Header-Set, value: set-overwrites-values }]
      add: [{ name: X-Header-Add, value: add-appends-values }]
      remove: [X-Echo]
  - name: host
    matches: [{ path: { prefix: /one } }]
    service: echo
    rewrite: { hostname: one.example.org }
  - name: prefix-redirect
    matches: [{ path: { prefix: /original-prefix } }]
    redirect: { path: { replacePrefixMatch: /replacement-prefix } }
  - name: full-redirect
    matches: [{ path: { prefix: /full } }]
    redirect: { path: { replaceFullPath: /full-path-replacement } }
  - name: host-redirect
    matches: [{ path: { prefix: /path-and-host } }]
    redirect: { hostname: example.org, path: { replacePrefixMatch: /replacement-prefix } }
  - name: status-redirect
    matches: [{ path: { prefix: /full-path-and-status } }]
    redirect: { path: { replaceFullPath: /replacement-full }, statusCode: 301 }
  - name: scheme-redirect
    matches: [{ path: { prefix: /secure } }]
    redirect: { scheme: https }
  - name: abort-all
    matches: [{ path: { prefix: /abort } }]
    service: echo
    fault: { abort: { percent: 100, status: 418 } }
  - name: abort-half
    matches: [{ path: { prefix: /half } }]
    service: echo
    fault: { abort: { percent: 50, status: 503 } }
  - name: delay
    matches: [{ path: { prefix: /delay } }]
    service: echo
    fault: { delay: { percent: 100, fixedDelay: 200ms } }
`),
});

const send = (path: string, headers: Record<string, string> = {}) =>
  call(gateway, `http://gw.example.com${path}`, { headers, redirect: 'manual' });
const seen = async (path: string, headers: Record<string, string> = {}) =>
  ((await (await send(path, headers)).json()) as Echo).headers;

describe('RequestHeaderModifier (Gateway API conformance, translated)', () => {
  it('set overwrites, whatever case the client used', async () => {
    expect((await seen('/set', { 'x-header-set': 'some-other-value' }))['x-header-set']).toBe('set-overwrites-values');
  });

  it('add appends to what the client sent', async () => {
    expect((await seen('/add', { 'x-header-add': 'header-val' }))['x-header-add']).toBe(
      'header-val, add-appends-values',
    );
  });

  it('remove deletes, in any case', async () => {
    const h = await seen('/remove', { 'x-header-remove': 'val', 'X-Header-Keep': 'k' });
    expect(h).not.toHaveProperty('x-header-remove');
    expect(h['x-header-keep']).toBe('k');
  });

  it("a route may not edit the mesh's own headers: refused when the config is validated", () => {
    expect(() =>
      planFrom(`
services:
  echo: { backends: [{ binding: ECHO }] }
routes:
  - name: r
    service: echo
    requestHeaders: { set: [{ name: X-Mesh-Identity, value: forged }] }
`),
    ).toThrow(/routes\[0\]\.requestHeaders\.set\[0\]\.name: is set by the mesh/);
  });
});

describe('ResponseHeaderModifier, and both filters on one route', () => {
  it('edits the response the client gets; the request edit applies too', async () => {
    const res = await send('/response', {});
    expect(res.headers.get('x-header-set')).toBe('set-overwrites-values');
    expect(res.headers.get('x-header-add')).toBe('add-appends-values');
    expect(res.headers.has('x-echo')).toBe(false);
    expect(((await res.json()) as Echo).headers['x-request-edit']).toBe('yes');
  });
});

describe('URLRewrite hostname', () => {
  it('the backend sees the rewritten host, the path unchanged', async () => {
    const res = await send('/one/two');
    const echo = (await res.json()) as Echo;
    expect(new URL(echo.url).host).toBe('one.example.org');
    expect(new URL(echo.url).pathname).toBe('/one/two');
  });
});

describe('RequestRedirect (Gateway API conformance, translated)', () => {
  it.each([
    ['/original-prefix/lemon', 302, 'http://gw.example.com/replacement-prefix/lemon'],
    ['/full/path/original', 302, 'http://gw.example.com/full-path-replacement'],
    ['/path-and-host', 302, 'http://example.org/replacement-prefix'],
    ['/full-path-and-status', 301, 'http://gw.example.com/replacement-full'],
    ['/secure/x?q=1', 302, 'https://gw.example.com/secure/x?q=1'],
  ])('%s answers %i to %s, with no backend', async (path, status, location) => {
    const res = await send(path);
    expect(res.status).toBe(status);
    expect(res.headers.get('location')).toBe(location);
  });

  it('/full-path-and-host does not match the /full rule (whole path segments)', async () => {
    expect((await send('/full-path-and-host')).status).toBe(404);
  });
});

describe('fault injection', () => {
  it('abort 100%: every request answered with the status, none forwarded', async () => {
    const res = await send('/abort');
    expect(res.status).toBe(418);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('fault_injected');
  });

  it('abort 50%: about half of 400 requests (binomial: within 5 standard deviations)', async () => {
    let aborted = 0;
    for (let i = 0; i < 400; i++) if ((await send('/half')).status === 503) aborted++;
    expect(Math.abs(aborted - 200)).toBeLessThan(50);
  });

  it('delay 100%: the answer comes no sooner than the delay', async () => {
    const start = Date.now();
    expect((await send('/delay')).status).toBe(200);
    expect(Date.now() - start).toBeGreaterThanOrEqual(195);
  });
});

describe('answers after the rate-limit stage carry the RateLimit fields', () => {
  const limited = createGateway({
    plan: planFrom(`
rateLimits:
  roomy: { limit: 1000, period: 1s, key: [route] }
services:
  broken: { backends: [{ binding: BROKEN }] }
  echo: { backends: [{ binding: ECHO }] }
routes:
  - name: moved
    matches: [{ path: { prefix: /moved } }]
    redirect: { hostname: example.org }
    rateLimits: [roomy]
  - name: faulty
    matches: [{ path: { prefix: /faulty } }]
    service: echo
    fault: { abort: { percent: 100, status: 503 } }
    rateLimits: [roomy]
  - name: failing
    matches: [{ path: { prefix: /failing } }]
    service: broken
    rateLimits: [roomy]
`),
  });

  it.each([
    ['/moved', 302],
    ['/faulty', 503],
    ['/failing', 502],
  ])('%s (%i)', async (path, status) => {
    const res = await call(limited, `http://gw.example.com${path}/x`, { redirect: 'manual' });
    expect(res.status).toBe(status);
    expect(res.headers.get('ratelimit-policy')).toContain('roomy');
    expect(res.headers.get('ratelimit')).toMatch(/^"roomy";r=\d+;t=\d+$/);
  });
});

describe('sticky canary splits', () => {
  const sticky = createGateway({
    plan: planFrom(`
services:
  svc:
    backends:
      - { binding: ECHO, version: v1, weight: 50 }
      - { binding: ECHO_V2, version: v2, weight: 50 }
  other: { backends: [{ binding: ECHO_V2 }] }
routes:
  - name: versions
    matches: [{ path: { prefix: /versions } }]
    service: svc
    sticky: header:x-user
  - name: refs
    matches: [{ path: { prefix: /refs } }]
    backendRefs: [{ service: svc, version: v1, weight: 80 }, { service: other, weight: 20 }]
    sticky: cookie:session
  - name: canary
    matches: [{ path: { prefix: /versions }, headers: { x-canary: always } }]
    service: svc
    version: v2
`),
  });
  const nameFor = async (path: string, headers: Record<string, string>) =>
    ((await (await call(sticky, `http://gw.example.com${path}`, { headers })).json()) as Echo).name;

  it("the same user always lands on the same version of the service's split; users land on both", async () => {
    const homes = new Set<string>();
    for (let u = 0; u < 40; u++) {
      const first = await nameFor('/versions', { 'x-user': `u${u}` });
      for (let i = 0; i < 4; i++) expect(await nameFor('/versions', { 'x-user': `u${u}` })).toBe(first);
      homes.add(first);
    }
    expect([...homes].sort()).toEqual(['echo', 'echo-v2']);
  });

  it('a sticky backendRefs split keeps a session on its backend, about by the weights', async () => {
    let other = 0;
    for (let u = 0; u < 200; u++) {
      const first = await nameFor('/refs', { cookie: `a=1; session=s${u}` });
      expect(await nameFor('/refs', { cookie: `session=s${u}` })).toBe(first);
      if (first === 'echo-v2') other++;
    }
    // 20% of 200, binomial: within 5 standard deviations (about 28).
    expect(Math.abs(other - 40)).toBeLessThan(28);
  });

  it('a header rule forces the canary, whatever the sticky value (a more specific match)', async () => {
    for (let u = 0; u < 10; u++)
      expect(await nameFor('/versions', { 'x-user': `u${u}`, 'x-canary': 'always' })).toBe('echo-v2');
  });
});

describe('route fallbacks (graceful degradation)', () => {
  const degraded = createGateway({
    plan: planFrom(`
services:
  broken: { backends: [{ binding: BROKEN }] }
  flaky: { backends: [{ binding: FLAKY_A }] }
  echo: { backends: [{ binding: ECHO }] }
routes:
  - name: static
    matches: [{ path: { prefix: /static } }]
    service: broken
    fallback: { status: 200, body: '{"items":[]}', contentType: application/json }
  - name: other-service
    matches: [{ path: { prefix: /other } }]
    service: broken
    fallback: { service: echo }
  - name: own-error
    matches: [{ path: { prefix: /status } }]
    service: flaky
    fallback: { status: 200, body: fallback }
  - name: timeout
    matches: [{ path: { prefix: /hang } }]
    service: flaky
    timeouts: { request: 100ms }
    fallback: { status: 200, body: too slow }
`),
  });
  const get = (path: string) => call(degraded, `http://gw.example.com${path}`);

  it('a backend that gives no answer: the static fallback, marked as such', async () => {
    const res = await get('/static');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('x-mesh-fallback')).toBe('static');
    expect(await res.json()).toEqual({ items: [] });
  });

  it('or another service, sent the same request', async () => {
    const res = await get('/other/x');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mesh-fallback')).toBe('echo');
    expect(new URL(((await res.json()) as Echo).url).pathname).toBe('/other/x');
  });

  it("a backend's own 5xx is its answer: no fallback", async () => {
    const res = await get('/status/503');
    expect(res.status).toBe(503);
    expect(res.headers.has('x-mesh-fallback')).toBe(false);
  });

  it('a request timeout falls back too', async () => {
    const res = await get('/hang');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('too slow');
  });
});

describe('CORS at the gateway', () => {
  const site = createGateway({
    plan: planFrom(`
auth:
  issuers:
    ec: { issuer: https://cors.test, audiences: [meshwork], algorithms: [ES256], jwks: { keys: [{ kty: EC, crv: P-256, x: f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU, y: x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0 }] } }
services:
  echo: { backends: [{ binding: ECHO }] }
routes:
  - name: api
    matches: [{ path: { prefix: /api }, method: [GET, PUT] }]
    service: echo
    auth: {}
    cors:
      allowOrigins: [https://app.example.com, "https://*.preview.example.com"]
      allowMethods: [GET, PUT]
      allowHeaders: [Authorization, Content-Type]
      exposeHeaders: [X-Request-Id]
      maxAge: 10m
      allowCredentials: true
`),
  });
  const preflight = (origin: string, method = 'PUT', headers = 'authorization, content-type') =>
    call(site, 'http://gw.example.com/api/items', {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
    });

  it('a preflight is answered at the gateway, before authentication, for the route its method would match', async () => {
    const res = await preflight('https://app.example.com');
    expect(res.status).toBe(204);
    expect(Object.fromEntries(res.headers)).toMatchObject({
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET, PUT',
      'access-control-allow-headers': 'authorization, content-type',
      'access-control-max-age': '600',
      vary: 'Origin',
    });
    expect((await preflight('https://pr-7.preview.example.com')).status).toBe(204);
  });

  it('refuses a preflight from another origin or with another header: 403 cors_forbidden; a method no route takes is 404', async () => {
    expect((await preflight('https://app.example.com', 'DELETE')).status).toBe(404);
    for (const res of [
      await preflight('https://evil.example.com'),
      await preflight('https://preview.example.com'),
      await preflight('https://app.example.com', 'PUT', 'x-secret'),
    ]) {
      expect(res.status).toBe(403);
      expect(res.headers.has('access-control-allow-origin')).toBe(false);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('cors_forbidden');
    }
  });

  it("an actual request's answer carries the allow-origin fields, a 401 included; another origin's gets none", async () => {
    const mine = await call(site, 'http://gw.example.com/api/items', {
      headers: { origin: 'https://app.example.com' },
    });
    expect(mine.status).toBe(401);
    expect(mine.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(mine.headers.get('access-control-expose-headers')).toBe('X-Request-Id');
    const theirs = await call(site, 'http://gw.example.com/api/items', {
      headers: { origin: 'https://evil.example.com' },
    });
    expect(theirs.headers.has('access-control-allow-origin')).toBe(false);
  });

  it('"*" with allowCredentials is refused when the config is validated', () => {
    expect(() =>
      planFrom(`
services:
  echo: { backends: [{ binding: ECHO }] }
routes:
  - name: r
    service: echo
    cors: { allowOrigins: ["*"], allowCredentials: true }
`),
    ).toThrow(/cors\.allowOrigins: "\*" cannot go with allowCredentials/);
  });
});

describe('request mirroring', () => {
  const mirrored = (percent: number) =>
    createGateway({
      plan: planFrom(`
services:
  echo: { backends: [{ binding: ECHO }] }
  shadow: { backends: [{ binding: FLAKY_A }] }
routes:
  - name: m
    service: echo
    mirror: { service: shadow, percent: ${percent} }
`),
    });
  const copies = async (k: string) =>
    ((await (await env.FLAKY_A.fetch(`https://x/count/${k}`)).json()) as { count: number }).count;

  it('every request (percent 100) is copied, with its body; the client gets the real answer', async () => {
    const k = `mirror-${Date.now()}`;
    const gw = mirrored(100);
    for (let i = 0; i < 5; i++) {
      const res = await call(gw, `http://gw.example.com/ok?key=${k}`, {
        method: 'POST',
        body: 'copy me',
        headers: { 'content-length': '7' },
      });
      const echo = (await res.json()) as Echo;
      expect(echo.name).toBe('echo');
      expect(echo.body).toBe('copy me');
    }
    expect(await copies(k)).toBe(5);
  });

  it('about the configured share is copied (50% of 300, within 5 standard deviations)', async () => {
    const k = `mirror-half-${Date.now()}`;
    const gw = mirrored(50);
    for (let i = 0; i < 300; i++) await call(gw, `http://gw.example.com/ok?key=${k}`);
    expect(Math.abs((await copies(k)) - 150)).toBeLessThan(44);
  });

  it("a slow mirror never delays the real answer (it runs in the request's waitUntil)", async () => {
    const gw = mirrored(100);
    const ctx = createExecutionContext();
    const start = Date.now();
    const res = await gw.fetch(new Request('http://gw.example.com/slow/2000'), env as never, ctx);
    const answered = Date.now() - start;
    expect(res.status).toBe(200);
    expect(((await res.json()) as Echo).name).toBe('echo');
    await waitOnExecutionContext(ctx);
    // The echo answers at once; had the answer waited for the mirror, it would have taken 2 s.
    expect(Date.now() - start).toBeGreaterThanOrEqual(1995);
    expect(answered).toBeLessThan(1995);
  });
});

describe('backendRef filters (Gateway API: after the route filters)', () => {
  it("an entry's header edits apply to requests sent to it and its answers, after the route's", async () => {
    const gw = createGateway({
      plan: planFrom(`
services:
  echo: { backends: [{ binding: ECHO }] }
  echo-two: { backends: [{ binding: ECHO_V2 }] }
routes:
  - name: split
    backendRefs:
      - service: echo
        weight: 1
        requestHeaders: { set: [{ name: X-Ref, value: one }] }
        responseHeaders: { set: [{ name: X-Ref-Answer, value: one }] }
      - { service: echo-two, weight: 1 }
    requestHeaders: { set: [{ name: X-Route, value: r }, { name: X-Ref, value: route }] }
`),
    });
    const seenBy = new Map<string, { ref: string | undefined; route: string | undefined; answer: string | null }>();
    for (let i = 0; i < 40 && seenBy.size < 2; i++) {
      const res = await call(gw, 'http://gw.example.com/x');
      const echo = (await res.json()) as Echo;
      seenBy.set(echo.name, {
        ref: echo.headers['x-ref'],
        route: echo.headers['x-route'],
        answer: res.headers.get('x-ref-answer'),
      });
    }
    expect(seenBy.get('echo')).toEqual({ ref: 'one', route: 'r', answer: 'one' });
    expect(seenBy.get('echo-v2')).toEqual({ ref: 'route', route: 'r', answer: null });
  });
});

describe('east-west: retries and balancing through mesh.fetch', () => {
  it("a service's retry policy retries a failing east-west call; its balancer spreads calls", async () => {
    const bundle = bundleFrom(`
services:
  caller:
    backends: [{ binding: ECHO }]
    policy: { allowAnonymous: true }
  flaky:
    backends: [{ binding: FLAKY_A, name: a }, { binding: FLAKY_B, name: b }]
    traffic: { retry: { attempts: 3, backoff: 5ms } }
routes: []
`);
    const svc = withMesh(
      async (req, _env, _ctx, m) => m.fetch('flaky', new URL(req.url).pathname + new URL(req.url).search),
      {
        service: 'caller',
        config: bundle,
      },
    );
    // bad-on/flaky-a fails there only: every call still answers 200, from b after a retry.
    const names = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await call(svc, `https://caller.internal/bad-on/flaky-a?key=ew-${Date.now()}`, {}, { ...env });
      expect(res.status).toBe(200);
      names.add(((await res.json()) as { name: string }).name);
    }
    expect([...names]).toEqual(['flaky-b']);
    // Round robin: plain calls reach both endpoints.
    const spread = new Set<string>();
    for (let i = 0; i < 4; i++)
      spread.add(
        ((await (await call(svc, 'https://caller.internal/ok', {}, { ...env })).json()) as { name: string }).name,
      );
    expect([...spread].sort()).toEqual(['flaky-a', 'flaky-b']);
  });
});

describe('combinations found in review', () => {
  it('a mirrored route with retries replays the body it already read for the mirror', async () => {
    const gw = createGateway({
      plan: planFrom(`
services:
  echo: { backends: [{ binding: ECHO }] }
  shadow: { backends: [{ binding: FLAKY_A }] }
routes:
  - name: m
    service: echo
    mirror: { service: shadow }
    retry: { attempts: 1, unsafeMethods: true }
`),
    });
    const res = await call(gw, 'http://gw.example.com/ok', {
      method: 'PUT',
      body: 'abc',
      headers: { 'content-length': '3' },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Echo).body).toBe('abc');
  });

  it('a static fallback may be a 204 (no body), and a CORS answer keeps the Vary the backend set', async () => {
    const gw = createGateway({
      plan: planFrom(`
services:
  broken: { backends: [{ binding: BROKEN }] }
routes:
  - name: r
    service: broken
    fallback: { status: 204 }
    cors: { allowOrigins: [https://app.example.com] }
`),
    });
    const res = await call(gw, 'http://gw.example.com/x', { headers: { origin: 'https://app.example.com' } });
    expect(res.status).toBe(204);
    expect(res.headers.get('vary')).toBe('Origin');
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
  });
});
