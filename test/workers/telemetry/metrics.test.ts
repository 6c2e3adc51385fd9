/**
 * Metrics end to end inside workerd: gateways and services record, flush after their responses
 * to the real MeshTelemetry Durable Object (directly, or through the gateway's Telemetry
 * entrypoint), and /_mesh/metrics serves the sum. Series are told apart by route and workload
 * names unique to each test, since the object is shared by the whole run.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { telemetryOf } from '../../../src/control/telemetry/object.ts';
import { createGateway } from '../../../src/gateway/app.ts';
import { MetricsBuffer } from '../../../src/telemetry/metrics.ts';
import { call, devToken, planFrom } from '../helpers.ts';

const withStore = { ...env, MESH_TELEMETRY: env.TELEMETRY_STORE, MESH_ADMIN_TOKEN: 'test-admin-token-0123456789' };
const ADMIN = { authorization: 'Bearer test-admin-token-0123456789' };
let run = 0;
const unique = (what: string) => `${what}-${Date.now().toString(36)}-${++run}`;

async function scrape(): Promise<string> {
  return telemetryOf(withStore)!.prometheus('meshwork');
}

/** The value of the series of `metric` whose labels include every one of `labels`, or 0. */
function value(text: string, metric: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

async function until<T>(what: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function gatewayFor(route: string, extra = '') {
  return createGateway({
    plan: planFrom(`
observability:
  metrics: { flushInterval: 50ms }
services:
  flaky:
    backends: [{ binding: FLAKY_A, name: a }]
routes:
  - name: ${route}
    matches: [{ path: { prefix: /${route} } }]
    service: flaky
    rewrite: { pathPrefix: / }
${extra}
`),
  });
}

describe('/_mesh/metrics', () => {
  it('counts every request once, by route, destination, response code and response flags', async () => {
    const route = unique('counted');
    const gw = gatewayFor(route, '    retry: { attempts: 1, codes: [503], backoff: 0s }');
    for (let i = 0; i < 5; i++) expect((await call(gw, `https://gw.test/${route}/ok`, {}, withStore)).status).toBe(200);
    for (let i = 0; i < 3; i++)
      expect((await call(gw, `https://gw.test/${route}/status/503`, {}, withStore)).status).toBe(503);
    expect((await call(gw, `https://gw.test/nowhere-${route}`, {}, withStore)).status).toBe(404);
    const text = await until(scrape, (t) => value(t, 'meshwork_requests_total', { route, response_code: '503' }) >= 3);
    const base = { source_workload: 'gateway', destination_service: 'flaky', route };
    expect(value(text, 'meshwork_requests_total', { ...base, response_code: '200', response_flags: '-' })).toBe(5);
    // Retried and still failing: Envoy's URX (upstream retry limit exceeded).
    expect(value(text, 'meshwork_requests_total', { ...base, response_code: '503', response_flags: 'URX' })).toBe(3);
    expect(value(text, 'meshwork_requests_total', { ...base, destination_workload: 'flaky/a' })).toBe(8);
    expect(value(text, 'meshwork_request_duration_seconds_count', { ...base, response_code: '200' })).toBe(5);
    expect(
      value(text, 'meshwork_retries_total', { source_workload: 'gateway', destination_service: 'flaky' }),
    ).toBeGreaterThanOrEqual(3);
    // The unmatched request: no route, destination unknown, flag NR.
    expect(text).toMatch(
      /meshwork_requests_total\{[^}]*destination_service="unknown"[^}]*response_code="404",response_flags="NR"\} [1-9]/,
    );
  });

  it('counts auth failures by reason and rate-limit decisions by policy, with the hot keys', async () => {
    const route = unique('guarded');
    const gw = gatewayFor(
      route,
      `    auth: { scopes: [read:a] }
    rateLimits: [${route}-limit]
auth:
  issuers:
    local-dev: { issuer: https://dev.meshwork.local, audiences: [meshwork], algorithms: [ES256], jwks: { env: MESH_DEV_JWKS } }
rateLimits:
  ${route}-limit: { limit: 2, period: 1m, key: [claim:sub] }`,
    );
    const token = await devToken({ sub: `user-${route}`, scope: 'read:a' });
    const auth = { headers: { authorization: `Bearer ${token}` } };
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await call(gw, `https://gw.test/${route}/ok`, auth, withStore)).status);
    expect(statuses).toEqual([200, 200, 429]);
    expect((await call(gw, `https://gw.test/${route}/ok`, {}, withStore)).status).toBe(401);
    const badToken = { headers: { authorization: 'Bearer not.a.token' } };
    expect((await call(gw, `https://gw.test/${route}/ok`, badToken, withStore)).status).toBe(401);
    const text = await until(scrape, (t) => value(t, 'meshwork_auth_failures_total', { route }) >= 2);
    expect(value(text, 'meshwork_auth_failures_total', { route, reason: 'unauthorized' })).toBe(1);
    expect(value(text, 'meshwork_auth_failures_total', { route, reason: 'invalid_token' })).toBe(1);
    const policy = `${route}-limit`;
    expect(
      value(text, 'meshwork_ratelimit_decisions_total', { policy, enforcer: 'gateway', decision: 'allowed' }),
    ).toBe(2);
    expect(
      value(text, 'meshwork_ratelimit_decisions_total', { policy, enforcer: 'gateway', decision: 'limited' }),
    ).toBe(1);
    expect(value(text, 'meshwork_requests_total', { route, response_code: '429', response_flags: 'RL' })).toBe(1);
    const overview = await telemetryOf(withStore)!.overview();
    expect(overview.hotKeys).toContainEqual({ policy, key: `user-${route}`, allowed: 2, limited: 1 });
  });

  it('is served as Prometheus text 0.0.4 to the admin credential, or the scrape-only token', async () => {
    const gw = gatewayFor(unique('served'));
    const denied = await call(gw, 'https://gw.test/_mesh/metrics', {}, withStore);
    expect(denied.status).toBe(401);
    expect(await denied.text()).not.toContain('meshwork_requests_total');
    const res = await call(gw, 'https://gw.test/_mesh/metrics', { headers: ADMIN }, withStore);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await res.text()).toContain('# TYPE meshwork_requests_total counter');
    // The scrape-only token reads the metrics, and nothing of the admin API.
    const scraper = { ...withStore, MESH_METRICS_TOKEN: 'scrape-only-token-0123456789' };
    const scrape = { authorization: 'Bearer scrape-only-token-0123456789' };
    expect((await call(gw, 'https://gw.test/_mesh/metrics', { headers: scrape }, scraper)).status).toBe(200);
    expect((await call(gw, 'https://gw.test/_mesh/admin/status', { headers: scrape }, scraper)).status).toBe(401);
    expect((await call(gw, 'https://gw.test/_mesh/metrics', { headers: scrape }, withStore)).status).toBe(401);
    const overview = await call(gw, 'https://gw.test/_mesh/admin/telemetry', { headers: ADMIN }, withStore);
    expect(overview.status).toBe(200);
    expect(await overview.json()).toMatchObject({ windowSeconds: expect.any(Number), edges: expect.any(Array) });
  });

  it("east-west calls are reported by the calling service, through the gateway's entrypoint", async () => {
    const before = value(await scrape(), 'meshwork_requests_total', {
      source_workload: 'service-a',
      destination_service: 'service-b',
    });
    // Straight to service-a, as the gateway would call it; service-a calls service-b.
    const gw = createGateway({
      plan: planFrom(`
auth:
  issuers:
    local-dev: { issuer: https://dev.meshwork.local, audiences: [meshwork], algorithms: [ES256], jwks: { env: MESH_DEV_JWKS } }
services:
  service-a: { backends: [{ binding: SERVICE_A }] }
  service-b: { backends: [{ binding: SERVICE_B_V1, version: v1 }] }
routes:
  - { name: a, matches: [{ path: { prefix: /service-a } }], service: service-a, auth: { scopes: [read:a] } }
`),
    });
    const token = await devToken({ sub: unique('alice'), scope: 'read:a' });
    for (let i = 0; i < 3; i++) {
      const res = await call(
        gw,
        'https://gw.test/service-a',
        { headers: { authorization: `Bearer ${token}` } },
        withStore,
      );
      expect(res.status).toBe(200);
    }
    // service-a flushes on its own schedule (the bundled config's 1 s).
    const text = await until(
      scrape,
      (t) =>
        value(t, 'meshwork_requests_total', { source_workload: 'service-a', destination_service: 'service-b' }) >=
        before + 3,
    );
    expect(
      value(text, 'meshwork_requests_total', {
        source_workload: 'service-a',
        destination_service: 'service-b',
        route: '',
      }) - before,
    ).toBe(3);
  });

  it("a compromised service cannot report as another workload, add routes or labels, or use another audience's token", async () => {
    const forged = { source_workload: 'service-c', destination_service: 'service-b', response_code: '299' };
    const asGateway = { source_workload: 'gateway', response_code: '299' };
    const before = await scrape();
    const buf = new MetricsBuffer();
    for (let i = 0; i < 7; i++)
      buf.request(
        {
          source: 'gateway',
          service: 'service-b',
          version: 'v9',
          workload: unique('made-up'),
          route: 'admin',
          code: 299,
          flags: '-',
        },
        1,
      );
    buf.count('retries', ['gateway', 'service-b'], 1000);
    const batch = buf.drain();
    const attack = async (body: unknown) =>
      (await env.COMPROMISED.fetch('https://compromised.internal/attack/telemetry', {
        method: 'POST',
        body: JSON.stringify(body),
      }).then((r) => r.json())) as { ok: boolean; error?: string };
    expect(await attack({ batch, audience: 'meshwork-limiter' })).toMatchObject({ ok: false });
    expect(await attack({ batch })).toEqual({ ok: true });
    const text = await scrape();
    const delta = (labels: Record<string, string>) =>
      value(text, 'meshwork_requests_total', labels) - value(before, 'meshwork_requests_total', labels);
    // Stamped as the service it is, without the route it claimed, and with no label the config does not give.
    expect(delta({ ...forged, route: '', destination_version: 'unknown', destination_workload: 'unknown' })).toBe(7);
    expect(delta(asGateway)).toBe(0);
    expect(text).not.toContain('made-up');
    const retries = { source_workload: 'service-c', destination_service: 'service-b' };
    expect(value(text, 'meshwork_retries_total', retries) - value(before, 'meshwork_retries_total', retries)).toBe(
      1000,
    );
  });
});
