/**
 * Traffic management on the one call path, against real workers: three instances of a test
 * backend (test/fixtures/flaky-worker.js) that answer, fail, hang or throw on request and count
 * the tries they get. Each test builds its own gateway, so balancer and outlier state start fresh.
 */
import { describe, expect, it } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { withMesh } from '../../../src/wrapper/index.ts';
import { bundleFrom } from '../helpers.ts';
import { call, planFrom } from '../helpers.ts';
import { env } from 'cloudflare:test';

type Answer = { name: string; status: number; body?: string; count?: number };

let run = 0;
/** A fresh key per test, so the backends' counters start at zero. */
const key = (what: string) => `${what}-${Date.now()}-${++run}`;

function mesh(
  traffic = '',
  route = '',
  backends = '[{ binding: FLAKY_A, name: a }, { binding: FLAKY_B, name: b }, { binding: FLAKY_C, name: c }]',
) {
  const indent = (text: string, by: string) =>
    text
      .split('\n')
      .map((l) => by + l)
      .join('\n');
  return `
services:
  flaky:
    backends: ${backends}
${traffic ? `    traffic:\n${indent(traffic, '      ')}` : ''}
routes:
  - name: flaky
    matches: [{ path: { prefix: / } }]
    service: flaky
${route ? indent(route, '    ') : ''}
`;
}

/** One endpoint: its counter sees every try (each instance counts its own). */
const ONE = '[{ binding: FLAKY_A, name: a }]';

const gatewayOf = (yaml: string) => createGateway({ plan: planFrom(yaml) });

async function get(gw: ReturnType<typeof gatewayOf>, path: string, init: RequestInit = {}) {
  const res = await call(gw, `https://gw.example.com${path}`, init);
  return { status: res.status, body: (await res.json()) as Answer & { error?: { code: string; message: string } } };
}

/** How many tries the backends (all three) got for `k`. */
async function tries(k: string): Promise<number> {
  let n = 0;
  for (const b of [env.FLAKY_A, env.FLAKY_B, env.FLAKY_C])
    n += ((await (await b.fetch(`https://x/count/${k}`)).json()) as Answer).count!;
  return n;
}

describe("load balancing across a version's endpoints", () => {
  it('RoundRobin (the default) is smooth weighted: weights 5:1:1 give a a b a c a a', async () => {
    const gw = gatewayOf(
      mesh(
        '',
        '',
        '[{ binding: FLAKY_A, name: a, weight: 5 }, { binding: FLAKY_B, name: b }, { binding: FLAKY_C, name: c }]',
      ),
    );
    const names: string[] = [];
    for (let i = 0; i < 14; i++) names.push((await get(gw, '/ok')).body.name.slice(-1));
    expect(names.join(' ')).toBe('a a b a c a a a a b a c a a');
  });

  it('LeastRequest prefers the endpoint with fewer requests in flight', async () => {
    const gw = gatewayOf(
      mesh(
        'loadBalancer: { policy: LeastRequest }',
        '',
        '[{ binding: FLAKY_A, name: a }, { binding: FLAKY_B, name: b }]',
      ),
    );
    // One slow request holds an endpoint; every quick one meanwhile goes to the other.
    const slow = get(gw, '/slow/400');
    await new Promise((r) => setTimeout(r, 50));
    const quick: string[] = [];
    for (let i = 0; i < 6; i++) quick.push((await get(gw, '/ok')).body.name);
    const held = (await slow).body.name;
    expect(new Set(quick).size).toBe(1);
    expect(quick[0]).not.toBe(held);
  });

  it('ConsistentHash on a header: the same user always reaches the same endpoint, users spread over all', async () => {
    const gw = gatewayOf(mesh('loadBalancer: { policy: ConsistentHash, hashOn: "header:x-user" }'));
    const homes = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      for (let u = 0; u < 30; u++) {
        const { body } = await get(gw, '/ok', { headers: { 'x-user': `user-${u}` } });
        if (round === 0) homes.set(`user-${u}`, body.name);
        else expect(body.name).toBe(homes.get(`user-${u}`));
      }
    }
    expect(new Set(homes.values()).size).toBe(3);
  });
});

describe('timeouts', () => {
  it('timeouts.request: a hanging backend is answered 504 gateway_timeout at the deadline', async () => {
    const gw = gatewayOf(mesh('', 'timeouts: { request: 300ms }'));
    const start = Date.now();
    const { status, body } = await get(gw, '/hang');
    expect(status).toBe(504);
    expect(body.error!.code).toBe('gateway_timeout');
    expect(body.error!.message).toContain('300 ms');
    expect(Date.now() - start).toBeLessThan(5_000);
  });

  it('timeouts.backendRequest bounds each try, retries included, and never past timeouts.request', async () => {
    const k = key('per-try');
    const gw = gatewayOf(
      mesh('', 'timeouts: { request: 2s, backendRequest: 200ms }\nretry: { attempts: 2, codes: [504], backoff: 10ms }'),
    );
    const { status, body } = await get(gw, `/hang?key=${k}`);
    expect(status).toBe(504);
    expect(body.error!.code).toBe('upstream_timeout');
    expect(await tries(k)).toBe(3);
  });

  it("a service's timeouts apply to east-west calls through mesh.fetch", async () => {
    const bundle = bundleFrom(`
services:
  caller:
    backends: [{ binding: ECHO }]
    policy: { allowAnonymous: true }
  flaky:
    backends: [{ binding: FLAKY_A }]
    traffic: { timeouts: { request: 200ms } }
routes: []
`);
    const svc = withMesh(async (_req, _env, _ctx, m) => m.fetch('flaky', '/hang'), {
      service: 'caller',
      config: bundle,
      policies: [],
    });
    const res = await call(svc, 'https://caller.internal/', {}, { ...env });
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('gateway_timeout');
  });
});

describe('retries', () => {
  it('a GET that fails twice with 503 is answered 200 on the third try (attempts: 2)', async () => {
    const k = key('get');
    const gw = gatewayOf(mesh('', 'retry: { attempts: 2, backoff: 5ms }', ONE));
    expect((await get(gw, `/fail/2?key=${k}`)).status).toBe(200);
    expect(await tries(k)).toBe(3);
    const k2 = key('get-short');
    const one = gatewayOf(mesh('', 'retry: { attempts: 1, backoff: 5ms }', ONE));
    expect((await get(one, `/fail/2?key=${k2}`)).status).toBe(503);
    expect(await tries(k2)).toBe(2);
  });

  it('a retry goes to another endpoint when there is one', async () => {
    const k = key('other');
    const gw = gatewayOf(mesh('', 'retry: { attempts: 2, backoff: 5ms }'));
    // bad-on/flaky-a fails only there: the retry reaches b or c.
    for (let i = 0; i < 6; i++) expect((await get(gw, `/bad-on/flaky-a?key=${k}`)).status).toBe(200);
  });

  it('POST is not retried unless the route says unsafeMethods; then its body is sent again', async () => {
    const k = key('post');
    const gw = gatewayOf(mesh('', 'retry: { attempts: 2, backoff: 5ms }', ONE));
    // As a client sends a fixed body: with its Content-Length (a body without one is not replayed).
    const post = { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain', 'content-length': '7' } };
    expect((await get(gw, `/fail/1?key=${k}`, post)).status).toBe(503);
    expect(await tries(k)).toBe(1);
    const k2 = key('post-unsafe');
    const unsafe = gatewayOf(mesh('', 'retry: { attempts: 2, backoff: 5ms, unsafeMethods: true }', ONE));
    const ok = await get(unsafe, `/fail/1?key=${k2}`, post);
    expect(ok.status).toBe(200);
    expect(ok.body.body).toBe('payload');
    expect(await tries(k2)).toBe(2);
  });

  it('a body larger than maxBodyBytes is sent once, not retried', async () => {
    const k = key('big');
    const gw = gatewayOf(mesh('', 'retry: { attempts: 2, backoff: 5ms, unsafeMethods: true, maxBodyBytes: 4 }', ONE));
    expect(
      (await get(gw, `/fail/1?key=${k}`, { method: 'PUT', body: 'too long', headers: { 'content-length': '8' } }))
        .status,
    ).toBe(503);
    expect(await tries(k)).toBe(1);
  });

  it('a body without Content-Length (streamed) is sent once, not retried', async () => {
    const k = key('stream');
    const gw = gatewayOf(mesh('', 'retry: { attempts: 2, backoff: 5ms, unsafeMethods: true }', ONE));
    const body = new Blob(['streamed']).stream();
    expect((await get(gw, `/fail/1?key=${k}`, { method: 'POST', body })).status).toBe(503);
    expect(await tries(k)).toBe(1);
  });

  it('a backend that throws (no answer) is retried on connect failure', async () => {
    const k = key('throw');
    const gw = gatewayOf(
      mesh(
        '',
        'retry: { attempts: 1, backoff: 5ms, codes: [] }',
        '[{ binding: BROKEN, name: broken }, { binding: FLAKY_A, name: a }]',
      ),
    );
    const { status } = await get(gw, `/ok?key=${k}`);
    expect(status).toBe(200);
  });

  it('retries stop at the budget: ratio 0 and 2 per second leave 2 retries for 10 failing requests', async () => {
    const k = key('budget');
    const gw = gatewayOf(
      mesh('retryBudget: { ratio: 0, minPerSecond: 2, ttl: 1s }', 'retry: { attempts: 3, backoff: 1ms }'),
    );
    for (let i = 0; i < 10; i++) expect((await get(gw, `/fail/1000?key=${k}`)).status).toBe(503);
    expect(await tries(k)).toBe(12);
  });
});

describe('outlier detection', () => {
  it('an endpoint failing 5 times in a row is ejected: after that clients see only 200s, and it comes back after the ejection time', async () => {
    const gw = gatewayOf(mesh('outlierDetection: { baseEjectionTime: 1s }'));
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) statuses.push((await get(gw, '/bad-on/flaky-b')).status);
    // Round robin reaches b every third request: its fifth failure ejects it.
    expect(statuses.filter((s) => s === 503)).toHaveLength(5);
    expect(statuses.slice(15).every((s) => s === 200)).toBe(true);
    await new Promise((r) => setTimeout(r, 1100));
    const after: string[] = [];
    for (let i = 0; i < 3; i++) after.push((await get(gw, '/ok')).body.name);
    expect(after).toContain('flaky-b');
  });

  it('never ejects the last endpoint in rotation: with every endpoint failing, one stays and answers', async () => {
    const gw = gatewayOf(
      mesh(
        'outlierDetection: { maxEjectionPercent: 100 }',
        '',
        '[{ binding: FLAKY_A, name: a }, { binding: FLAKY_B, name: b }]',
      ),
    );
    for (let i = 0; i < 30; i++) expect((await get(gw, '/status/500')).status).toBe(500);
  });

  it('maxRequestsPerEndpoint: over the cap on every endpoint, 503 no_healthy_backend at once', async () => {
    const gw = gatewayOf(mesh('maxRequestsPerEndpoint: 1', '', '[{ binding: FLAKY_A, name: a }]'));
    const slow = get(gw, '/slow/300');
    await new Promise((r) => setTimeout(r, 50));
    const { status, body } = await get(gw, '/ok');
    expect(status).toBe(503);
    expect(body.error!.code).toBe('no_healthy_backend');
    expect((await slow).status).toBe(200);
  });
});
