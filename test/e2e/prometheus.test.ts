/**
 * A real Prometheus scrapes the local mesh's GET /_mesh/metrics (with the admin token as its
 * bearer credentials file, as docs/observability-metrics.md tells users to), while the test
 * sends a known amount of traffic; the counters Prometheus then holds must be exactly that
 * traffic, labelled as Istio labels it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetryOverview } from '../../src/telemetry/overview.ts';
import { localFetch } from '../support/local-http.ts';
import { startMesh, type RunningMesh } from '../support/mesh-process.ts';
import {
  byLabels,
  parseMetrics,
  pollQuery,
  promtoolCheckMetrics,
  startPrometheus,
  type RunningPrometheus,
} from '../support/prometheus.ts';

const persistTo = mkdtempSync(join(tmpdir(), 'meshwork-prom-state-'));
let mesh: RunningMesh;
let prom: RunningPrometheus;

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Envoy's default histogram buckets, which Istio's request duration uses (milliseconds). */
// prettier-ignore
const ISTIO_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
  Number.POSITIVE_INFINITY,
];

/** meshwork's own names: the same boundaries in seconds (Prometheus's base unit). */
const SECONDS_BUCKETS = ISTIO_BUCKETS.map((ms) => ms / 1000);

/**
 * The one lint promtool reports under `names: istio`, on purpose: Istio's own duration histogram
 * is in milliseconds (istio_request_duration_milliseconds), and dashboards and alerts written
 * for Istio query it by that name. meshwork's own names (seconds) have none. promtool exits 3
 * for lint findings (1 for a text it cannot parse); any other finding fails.
 */
const ACCEPTED_LINT = /^istio_request_duration_milliseconds use base unit "seconds" instead of "milliseconds"$/;

function adminToken(): string {
  return (JSON.parse(readFileSync('.meshwork/dev-keys.json', 'utf8')) as { adminToken: string }).adminToken;
}

function meshwork(...args: string[]) {
  const env = { ...process.env };
  delete env.MESH_ADMIN_TOKEN;
  delete env.MESHWORK_URL;
  const r = spawnSync(process.execPath, ['bin/meshwork.js', ...args], { encoding: 'utf8', env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user token from the CLI, as the README's walk-through gets one. */
function devToken(sub: string): string {
  const r = meshwork('token', '--sub', sub, '--scope', 'read:a', '--ttl', '1h');
  if (r.code !== 0) throw new Error(`meshwork token failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').at(-1)!;
}

async function send(path: string, headers: Record<string, string> = {}) {
  const res = await localFetch(`${mesh.url}${path}`, { headers });
  const text = await res.text();
  return { status: res.status, version: res.headers.get('x-service-version'), text };
}

async function metricsText(token = adminToken()): Promise<string> {
  const res = await localFetch(`${mesh.url}/_mesh/metrics`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`/_mesh/metrics answered ${res.status}: ${text.slice(0, 300)}`);
  return text;
}

/**
 * promtool over a metrics text: what it reports besides the accepted lint, and whether its exit
 * code is the one that output calls for (0 clean, 3 the accepted lint only).
 */
function promtool(text: string): { findings: string[]; exitAsExpected: boolean } {
  const { code, output } = promtoolCheckMetrics(text);
  const lines = output.split('\n').filter((l) => l.trim() !== '');
  const findings = lines.filter((l) => !ACCEPTED_LINT.test(l.trim()));
  return { findings, exitAsExpected: code === (lines.length > findings.length ? 3 : 0) };
}

// The label sets the test counts by.
const REQ = ['source_workload', 'destination_service', 'destination_version', 'response_code', 'response_flags'];
const Q_REQUESTS = `sum by (${REQ.join(', ')}) (meshwork_requests_total)`;
const Q_DURATION_COUNT = `sum by (${REQ.join(', ')}) (meshwork_request_duration_seconds_count)`;
const Q_AUTH = 'sum by (route, reason) (meshwork_auth_failures_total)';
const Q_RATELIMIT = 'sum by (policy, enforcer, decision) (meshwork_ratelimit_decisions_total)';
const QUIET = ['meshwork_retries_total', 'meshwork_ejections_total', 'meshwork_upstream_errors_total'];
const Q_QUIET = `sum by (__name__) ({__name__=~"${QUIET.join('|')}"})`;
const BASELINE_QUERIES: Array<[string, string[]]> = [
  [Q_REQUESTS, REQ],
  [Q_AUTH, ['route', 'reason']],
  [Q_RATELIMIT, ['policy', 'enforcer', 'decision']],
  [Q_QUIET, ['__name__']],
];

type Counts = Record<string, number>;
const key = (labels: string[], ...values: string[]) => labels.map((l, i) => `${l}=${values[i]}`).join(',');
const reqKey = (...values: string[]) => key(REQ, ...values);
function add(counts: Counts, k: string, n = 1): void {
  counts[k] = (counts[k] ?? 0) + n;
}
function plus(a: Counts, b: Counts): Counts {
  const out = { ...a };
  for (const [k, n] of Object.entries(b)) add(out, k, n);
  return out;
}
const total = (c: Counts) => Object.values(c).reduce((s, n) => s + n, 0);

/** What the counters held before the test's traffic (the readiness probes of startMesh). */
let baseline: Counts[] = [];
/** What the test sent, by the labels above. */
const sent = { requests: {} as Counts, auth: {} as Counts, ratelimit: {} as Counts };
let burstSub = '';
const burst = { admitted: 0, limited: 0 };
let eastWest = 0;

/**
 * The counters before the test's traffic: startMesh's readiness checks went through the
 * gateway, and reach the telemetry object with the next batch. Read once they have settled
 * (the same for 3 s: three batch intervals).
 */
async function settledBaseline(timeoutMs = 60_000): Promise<Counts[]> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  let since = Date.now();
  let seen: Counts[] = [];
  while (Date.now() < deadline) {
    seen = await Promise.all(BASELINE_QUERIES.map(async ([q, labels]) => byLabels(await prom.query(q), labels)));
    const now = JSON.stringify(seen);
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Object.keys(seen[0]!).length > 0 && Date.now() - since >= 3000) {
      return seen;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(
    `the mesh's counters did not settle (or never showed the readiness requests) within ${timeoutMs} ms; last saw ${last}\nprometheus:\n${prom.output().slice(-2000)}`,
  );
}

async function sendTraffic(): Promise<void> {
  const run = Date.now().toString(36);
  const fail = (what: string, r: { status: number; text: string }) => {
    throw new Error(`the test's traffic did not go as planned: ${what} answered ${r.status} ${r.text.slice(0, 300)}`);
  };
  const eastWestCall = (text: string) => {
    const version = (JSON.parse(text) as { service_b_version: string }).service_b_version;
    add(sent.requests, reqKey('service-a', 'service-b', version, '200', '-'));
    eastWest++;
  };

  // 20 to the public route: gateway -> service-b, each version as service-b reports itself.
  for (let batch = 0; batch < 4; batch++) {
    for (const r of await Promise.all(Array.from({ length: 5 }, () => send('/service-b')))) {
      if (r.status !== 200 || !r.version) fail('/service-b', r);
      add(sent.requests, reqKey('gateway', 'service-b', r.version!, '200', '-'));
    }
  }

  // 3 users x 3 requests to /service-a (within their limit of 5): each makes one east-west call.
  for (let u = 0; u < 3; u++) {
    const authorization = `Bearer ${devToken(`prom-${run}-user${u}`)}`;
    for (let i = 0; i < 3; i++) {
      const r = await send('/service-a', { authorization });
      if (r.status !== 200) fail('/service-a', r);
      add(sent.requests, reqKey('gateway', 'service-a', 'unknown', '200', '-'));
      add(sent.ratelimit, key(['policy', 'enforcer', 'decision'], 'per-user', 'gateway', 'allowed'));
      eastWestCall(r.text);
    }
  }

  // One user sends 10 at once: 5 per 10 s (one more every 2 s) are admitted, the rest limited.
  burstSub = `prom-${run}-burst`;
  const authorization = `Bearer ${devToken(burstSub)}`;
  for (const r of await Promise.all(Array.from({ length: 10 }, () => send('/service-a', { authorization })))) {
    if (r.status === 200) {
      burst.admitted++;
      add(sent.requests, reqKey('gateway', 'service-a', 'unknown', '200', '-'));
      add(sent.ratelimit, key(['policy', 'enforcer', 'decision'], 'per-user', 'gateway', 'allowed'));
      eastWestCall(r.text);
    } else if (r.status === 429) {
      burst.limited++;
      add(sent.requests, reqKey('gateway', 'service-a', 'unknown', '429', 'RL'));
      add(sent.ratelimit, key(['policy', 'enforcer', 'decision'], 'per-user', 'gateway', 'limited'));
    } else fail('a burst to /service-a', r);
  }
  if (burst.limited === 0) throw new Error('the burst of 10 was not rate limited at all: the test needs a 429');
  // service-b's own policy counts service-a's calls into it.
  add(sent.ratelimit, key(['policy', 'enforcer', 'decision'], 'service-b-from-a', 'service-b', 'allowed'), eastWest);

  // Auth denied at the gateway: no token twice, a token that is not a JWT once.
  for (const headers of [{}, {}, { authorization: 'Bearer not-a-valid-token' }] as Array<Record<string, string>>) {
    const r = await send('/service-a', headers);
    if (r.status !== 401) fail('/service-a without a valid token', r);
    add(sent.requests, reqKey('gateway', 'service-a', 'unknown', '401', 'UAEX'));
    // The reason is the error code the client got (unauthorized, invalid_token).
    add(
      sent.auth,
      key(['route', 'reason'], 'service-a', (JSON.parse(r.text) as { error: { code: string } }).error.code),
    );
  }

  // No route: Istio reports these with destination_service "unknown" and flag NR.
  for (let i = 0; i < 3; i++) {
    const r = await send(`/nowhere-${i}`);
    if (r.status !== 404) fail('/nowhere', r);
    add(sent.requests, reqKey('gateway', 'unknown', 'unknown', '404', 'NR'));
  }
}

/** Polls `expr` until its `sum by (labels)` is `expected`; on timeout, a diff of what it last was. */
async function expectCounts(expr: string, labels: string[], expected: Counts, timeoutMs = 60_000): Promise<void> {
  try {
    await pollQuery(prom, expr, (s) => isDeepStrictEqual(byLabels(s, labels), expected), timeoutMs);
  } catch (e) {
    expect(
      byLabels(await prom.query(expr), labels),
      `${expr} (after ${timeoutMs} ms)\n${(e as Error).message}`,
    ).toEqual(expected);
  }
}

/** A duration histogram in Prometheus: Istio's buckets, cumulative, one observation per request. */
async function expectHistogram(name: string, bounds: number[]): Promise<void> {
  const expected = plus(baseline[0]!, sent.requests);
  await expectCounts(Q_DURATION_COUNT.replace('meshwork_request_duration_seconds', name), REQ, expected);
  const le = (s: { metric: Record<string, string> }) => (s.metric.le === '+Inf' ? Infinity : Number(s.metric.le));
  const les = await prom.query(`count by (le) (${name}_bucket)`);
  expect(les.map(le).sort((a, b) => a - b)).toEqual(bounds);
  // Cumulative: each bucket holds at least the one below it, +Inf holds them all.
  const buckets = (await prom.query(`sum by (le) (${name}_bucket)`)).map((s) => [le(s), s.value] as const);
  buckets.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < buckets.length; i++) expect(buckets[i]![1]).toBeGreaterThanOrEqual(buckets[i - 1]![1]);
  expect(buckets.at(-1)![1]).toBe(total(expected));
}

beforeAll(async () => {
  mesh = await startMesh({ persistTo });
  prom = await startPrometheus({ address: new URL(mesh.url).host, metricsPath: '/_mesh/metrics', token: adminToken() });
  baseline = await settledBaseline();
  await sendTraffic();
}, 300_000);

afterAll(async () => {
  await prom?.stop();
  await mesh?.stop();
});

describe('Prometheus scraping the local mesh (GET /_mesh/metrics)', () => {
  it('needs the admin credential, like the admin API; with it, Prometheus text format 0.0.4', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token' }] as Array<Record<string, string>>) {
      const res = await localFetch(`${mesh.url}/_mesh/metrics`, { headers });
      const body = await res.text();
      expect(res.status, body).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(body).not.toContain('meshwork_requests_total');
    }
    const res = await localFetch(`${mesh.url}/_mesh/metrics`, {
      headers: { authorization: `Bearer ${adminToken()}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(CONTENT_TYPE);
    const text = await res.text();
    expect(text).toMatch(/^# TYPE meshwork_requests_total counter$/m);
    expect(text).toMatch(/^# TYPE meshwork_request_duration_seconds histogram$/m);
  });

  it('passes promtool check metrics with nothing to report', async () => {
    const text = await metricsText();
    const { code, output } = promtoolCheckMetrics(text);
    expect(output.trim(), text.slice(0, 3000)).toBe('');
    expect(code).toBe(0);
  });

  it('is scraped by Prometheus with the bearer credentials file: up == 1', async () => {
    const up = await pollQuery(prom, `up{job="${prom.job}"}`, (s) => s.length === 1 && s[0]!.value === 1, 30_000);
    expect(up[0]!.metric.instance).toBe(new URL(mesh.url).host);
    const scraped = await prom.query(`scrape_samples_scraped{job="${prom.job}"}`);
    expect(scraped[0]!.value).toBeGreaterThan(0);
  });

  it('the admin telemetry overview (what the dashboard and meshwork top show) has the same traffic', async () => {
    const expectedTotal = total(plus(baseline[0]!, sent.requests));
    const url = `${mesh.url}/_mesh/admin/telemetry`;
    const headers = { authorization: `Bearer ${adminToken()}` };
    const read = async () => (await (await localFetch(url, { headers })).json()) as TelemetryOverview;
    const edge = (o: TelemetryOverview, source: string, destination: string) =>
      o.edges.find((e) => e.source === source && e.destination === destination);
    const toA = 9 + burst.admitted + burst.limited + 3;
    const deadline = Date.now() + 30_000;
    let o = await read();
    while (
      Date.now() < deadline &&
      !(
        edge(o, 'service-a', 'service-b')?.requests === eastWest &&
        edge(o, 'gateway', 'service-a')?.requests === toA &&
        o.totals.requests === expectedTotal
      )
    ) {
      await new Promise((r) => setTimeout(r, 500));
      o = await read();
    }
    expect(edge(o, 'service-a', 'service-b'), JSON.stringify(o, null, 1)).toMatchObject({
      requests: eastWest,
      errors: 0,
      clientErrors: 0,
      errorRate: 0,
      health: 'healthy',
      p50Ms: expect.any(Number),
      p99Ms: expect.any(Number),
    });
    // The 401s and 429s are client errors, not errors: the edge stays healthy.
    expect(edge(o, 'gateway', 'service-a'), JSON.stringify(o, null, 1)).toMatchObject({
      requests: toA,
      errors: 0,
      clientErrors: burst.limited + 3,
      health: 'healthy',
    });
    expect(edge(o, 'gateway', 'service-b')!.requests).toBeGreaterThanOrEqual(20);
    expect(edge(o, 'service-a', 'service-b')!.rps).toBeGreaterThan(0);
    expect(o.totals.requests).toBe(expectedTotal);
    expect(o.totals.authFailures).toBe(total(plus(baseline[1]!, sent.auth)));
    const hot = o.hotKeys.find((k) => k.policy === 'per-user' && k.key.includes(burstSub));
    expect(hot, JSON.stringify(o.hotKeys)).toMatchObject({ allowed: burst.admitted, limited: burst.limited });
    // Most limited first.
    expect(o.hotKeys[0]!.limited).toBeGreaterThanOrEqual(burst.limited);
  });

  it('`meshwork top --once` shows those edges and hot keys; `meshwork metrics` prints the scrape', () => {
    const r = meshwork('top', '--once', '--url', mesh.url);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^SOURCE\s+DESTINATION\s+RPS\s+ERR%\s+P50\s+P99\s+HEALTH$/m);
    expect(r.stdout).toMatch(/^service-a\s+service-b\s+\d+\.\d+\s+0\.0%\s+\S+\s+\S+\s+healthy$/m);
    expect(r.stdout).toMatch(/^gateway\s+service-a\s+\d+\.\d+\s+0\.0%\s+\S+\s+\S+\s+healthy$/m);
    expect(r.stdout).toMatch(/^gateway\s+service-b\s+\d+\.\d+\s+0\.0%\s+\S+\s+\S+\s+healthy$/m);
    const hot = r.stdout.split('\n').find((l) => l.startsWith('per-user') && l.includes(burstSub));
    expect(hot, r.stdout).toBeDefined();
    expect(hot!.trim().split(/\s+/).slice(-2)).toEqual([String(burst.admitted), String(burst.limited)]);
    // The alias.
    const watch = meshwork('status', '--watch', '--once', '--url', mesh.url);
    expect(watch.code, watch.stderr).toBe(0);
    expect(watch.stdout).toMatch(/^SOURCE\s+DESTINATION/m);

    const m = meshwork('metrics', '--url', mesh.url);
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout).toMatch(/^# TYPE meshwork_requests_total counter$/m);
    expect(m.stdout).toMatch(/^meshwork_requests_total\{.*source_workload="service-a".*\} \d+$/m);
    expect(promtool(m.stdout)).toEqual({ findings: [], exitAsExpected: true });
    const denied = meshwork('metrics', '--url', mesh.url, '--token', 'not-the-admin-token');
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('error 401');
    expect(denied.stdout).toBe('');
  });

  it('`meshwork top` redraws every --interval seconds until Ctrl-C, then exits 0', async () => {
    const env = { ...process.env };
    delete env.MESH_ADMIN_TOKEN;
    delete env.MESHWORK_URL;
    const child = spawn(process.execPath, ['bin/meshwork.js', 'top', '--interval', '0.5', '--url', mesh.url], { env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const frames = () => out.split('\n').filter((l) => l.startsWith(`${mesh.url}: last `)).length;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && frames() < 3 && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 100));
    expect(frames(), out).toBeGreaterThanOrEqual(3);
    expect(out).toContain('every 0.5s; Ctrl-C to quit');
    expect(out).toMatch(/^service-a\s+service-b\s/m);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('counts every request exactly once, by caller, destination, version, code and Envoy response flag', async () => {
    await expectCounts(Q_REQUESTS, REQ, plus(baseline[0]!, sent.requests));
    // The same per caller and service, as an Istio dashboard sums them.
    const expected: Counts = {};
    for (const [k, n] of Object.entries(plus(baseline[0]!, sent.requests))) {
      const [source, destination] = k.split(',');
      add(expected, `${source},${destination}`, n);
    }
    const bySource = await prom.query('sum by (source_workload, destination_service) (meshwork_requests_total)');
    expect(byLabels(bySource, ['source_workload', 'destination_service'])).toEqual(expected);
    // service-a's calls to service-b, reported by service-a (reporter "source").
    expect(expected['source_workload=service-a,destination_service=service-b']).toBe(eastWest);
  });

  it('labels every request series as Istio does', async () => {
    const series = await prom.query('meshwork_requests_total');
    expect(series.length).toBeGreaterThan(0);
    const workloads: Record<string, Set<string>> = {};
    for (const { metric: m } of series) {
      const where = JSON.stringify(m);
      expect(m.reporter, where).toBe('source');
      expect(m.request_protocol, where).toBe('http');
      expect(m.response_code, where).toMatch(/^[1-5]\d\d$/);
      // Envoy's flags (the contract's, and URX / RLSE / DPE, which Envoy has too).
      expect(m.response_flags, where).toMatch(/^(-|NR|UH|UF|UT|URX|RL|RLSE|UAEX|FI|DPE|DC)$/);
      expect(m.destination_service_name, where).toBe(m.destination_service);
      // Prometheus drops empty labels: route "" (east-west) arrives as no route label at all.
      // (Each example route is named after its service.)
      if (m.source_workload === 'gateway' && m.response_flags !== 'NR')
        expect(m.route, where).toBe(m.destination_service);
      if (m.source_workload === 'service-a') expect(m.route, where).toBeUndefined();
      if (m.response_flags === '-') {
        expect(m.destination_workload, where).not.toBe('unknown');
        expect(m.destination_workload, where).toBeTruthy();
        (workloads[`${m.destination_service}@${m.destination_version}`] ??= new Set()).add(m.destination_workload!);
      } else if (['NR', 'UH', 'RL', 'UAEX', 'FI'].includes(m.response_flags!)) {
        // Answered before an endpoint was chosen (no route, none healthy, limited, denied, fault).
        expect(m.destination_workload, where).toBe('unknown');
        expect(m.destination_version, where).toBe('unknown');
      }
    }
    // One endpoint per version in the example mesh, a different one for each (v2 takes 10% of
    // the calls at random: whichever versions answered the test's requests).
    const answered = new Set<string>();
    for (const k of Object.keys(plus(baseline[0]!, sent.requests))) {
      const m = Object.fromEntries(k.split(',').map((kv) => kv.split('=') as [string, string]));
      if (m.response_flags === '-') answered.add(`${m.destination_service}@${m.destination_version}`);
    }
    expect(Object.keys(workloads).sort()).toEqual([...answered].sort());
    expect(answered).toContain('service-a@unknown');
    for (const set of Object.values(workloads)) expect(set.size).toBe(1);
    expect(new Set(Object.values(workloads).map((s) => [...s][0])).size).toBe(answered.size);
  });

  it('rate() of both services is above zero (the query an Istio dashboard starts from)', async () => {
    const rates = await pollQuery(
      prom,
      'sum by (destination_service) (rate(meshwork_requests_total[1m])) > 0',
      (s) => ['service-a', 'service-b'].every((d) => s.some((x) => x.metric.destination_service === d)),
      30_000,
    );
    for (const r of rates) expect(r.value).toBeGreaterThan(0);
  });

  it("the duration histogram: Istio's buckets in seconds, one observation per request, a p50 and p99", async () => {
    await expectHistogram('meshwork_request_duration_seconds', SECONDS_BUCKETS);
    for (const q of [0.5, 0.99]) {
      const expr = `histogram_quantile(${q}, sum by (le) (rate(meshwork_request_duration_seconds_bucket{destination_service="service-b"}[5m])))`;
      const [p] = await prom.query(expr);
      expect(p, expr).toBeDefined();
      expect(Number.isFinite(p!.value) && p!.value > 0, `${expr} = ${p!.value}`).toBe(true);
    }
  });

  it('auth failures and rate-limit decisions are counted, and a healthy mesh shows no retries, ejections or upstream errors', async () => {
    await expectCounts(Q_AUTH, ['route', 'reason'], plus(baseline[1]!, sent.auth));
    await expectCounts(Q_RATELIMIT, ['policy', 'enforcer', 'decision'], plus(baseline[2]!, sent.ratelimit));
    // Read after the batch carrying the traffic arrived (the counts above): nothing was added.
    expect(byLabels(await prom.query(Q_QUIET), ['__name__'])).toEqual(baseline[3]);
  });

  it('with observability.metrics.names: istio, the same counters are served as istio_*', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-routes-'));
    cpSync('routes', dir, { recursive: true });
    const yaml = readFileSync(join(dir, 'mesh.yaml'), 'utf8');
    writeFileSync(join(dir, 'mesh.yaml'), `${yaml}\nobservability:\n  metrics:\n    names: istio\n`);
    const applied = meshwork('apply', dir, '-m', 'istio metric names', '--url', mesh.url);
    expect(applied.code, applied.stderr).toBe(0);
    try {
      const deadline = Date.now() + 30_000;
      let text = await metricsText();
      while (Date.now() < deadline && !/^istio_requests_total\{/m.test(text)) {
        await new Promise((r) => setTimeout(r, 500));
        text = await metricsText();
      }
      expect(text).toMatch(/^# TYPE istio_requests_total counter$/m);
      expect(text).toMatch(/^# TYPE istio_request_duration_milliseconds histogram$/m);
      expect(text).not.toMatch(/^meshwork_/m);
      expect(promtool(text)).toEqual({ findings: [], exitAsExpected: true });
      // Counters carry on under the new names: nothing restarts at zero.
      const expected = plus(baseline[0]!, sent.requests);
      await expectCounts(Q_REQUESTS.replace('meshwork_', 'istio_'), REQ, expected);
      await expectHistogram('istio_request_duration_milliseconds', ISTIO_BUCKETS);
      await expectCounts(
        `sum by (source_workload, destination_service) (istio_requests_total{source_workload="service-a"})`,
        ['source_workload', 'destination_service'],
        { 'source_workload=service-a,destination_service=service-b': eastWest },
      );
    } finally {
      expect(meshwork('rollback', '0', '--url', mesh.url).code).toBe(0);
    }
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !/^meshwork_requests_total\{/m.test(await metricsText())) {
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(await metricsText()).toMatch(/^meshwork_requests_total\{/m);
  }, 240_000);

  it('the counters survive a restart of the mesh (aggregated in a Durable Object, persisted)', async () => {
    const eastWestIn = (text: string) =>
      parseMetrics(text)
        .filter((s) => s.name === 'meshwork_requests_total' && s.labels.source_workload === 'service-a')
        .reduce((n, s) => n + s.value, 0);
    expect(eastWestIn(await metricsText())).toBe(eastWest);
    await prom.stop();
    await mesh.stop();
    mesh = await startMesh({ persistTo });
    // A new process, new isolates: only the object's persisted state can know service-a's calls.
    const after = await metricsText();
    expect(eastWestIn(after)).toBe(eastWest);
    const gatewayToB = parseMetrics(after)
      .filter((s) => s.name === 'meshwork_requests_total' && s.labels.source_workload === 'gateway')
      .filter((s) => s.labels.destination_service === 'service-b')
      .reduce((n, s) => n + s.value, 0);
    expect(gatewayToB).toBeGreaterThanOrEqual(20);
  }, 240_000);
});
