/**
 * `npm run bench`: what the mesh costs per request, against the direct path and against the
 * do-it-yourself gateway, all measured in one run on one machine.
 *
 * Method: workers run in workerd through the Miniflare API; each measured worker is served on
 * its own socket (unsafeDirectSockets), because wrangler dev's proxy and Miniflare's entry worker
 * each cut throughput several-fold and would hide the mesh's own cost. Throughput comes from
 * autocannon (32 connections); scenarios alternate round by round so drift on a shared machine
 * hits all alike, and the median round counts. Latency percentiles come from a separate phase
 * at 2 connections timed with hrtime (autocannon rounds to whole milliseconds, and at 32
 * connections latency is mostly queueing). Route matching is also timed directly in Node.
 *
 *   npm run bench -- [--duration 5] [--connections 32] [--rounds 3] [--scenarios a,b] [--quick] [--check]
 *
 * Prints a table and writes bench/results.json. Quote ratios, not absolute numbers.
 * --quick: short phases for CI (about a minute); --check: fail on gross regressions, judged by
 * loose ratios only.
 */
import autocannon from 'autocannon';
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MAX_PATH_SEGMENTS } from '../src/core/path.ts';
import { Router } from '../src/router/router.ts';
import { freePort } from '../test/support/mesh-process.ts';
import { ROOT } from '../scripts/bundle.ts';
import { BENCH_ISSUER, bundleOf, startBenchMesh, type BenchMesh } from './mesh.ts';
import { heapUsedMB, latency } from './probe.ts';

// ---- configs -----------------------------------------------------------------------------

const SERVICES = `
services:
  service-b:
    backends:
      - binding: SERVICE_B
`;

const issuer = (jwks: string, cache = '') => `
auth:
  issuers:
    bench:
      issuer: ${BENCH_ISSUER}
      audiences: [meshwork]
      algorithms: [ES256]
      jwks: ${jwks}
${cache}`;

/** Never runs out: the bench measures what checking a limit costs, not rejections. */
const limit = (mode: string, key: string) => `
rateLimits:
  bench:
    limit: 1000000000
    period: 1s
    key: [${key}]
    mode: ${mode}
`;

const route = (extra: string[]) => `
  - name: service-b
    matches: [{ path: { prefix: /service-b } }]
    service: service-b
${extra.map((l) => `    ${l}`).join('\n')}`;

const AUTH = 'auth: { scopes: [read:b] }';
const LIMITED = 'rateLimits: [bench]';

/** A routes table of n routes (exact, prefix and pattern in turn) before the measured route. */
export function manyRoutes(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n - 1; i++) {
    const path =
      i % 3 === 0 ? `{ exact: /svc${i}/x }` : i % 3 === 1 ? `{ prefix: /svc${i} }` : `{ pattern: "/svc${i}/:id" }`;
    lines.push(`  - name: r${i}\n    matches: [{ path: ${path} }]\n    service: service-b`);
  }
  return lines.join('\n');
}

const gateways = (jwks: string): Record<string, string> => ({
  'gw-forward': `${SERVICES}routes:${route([])}`,
  'gw-auth': `${issuer(jwks)}${SERVICES}routes:${route([AUTH])}`,
  'gw-auth-nocache': `${issuer(jwks, '  verifiedCache: { maxEntries: 0 }')}${SERVICES}routes:${route([AUTH])}`,
  'gw-limited': `${limit('exact', 'ip')}${SERVICES}routes:${route([LIMITED])}`,
  'gw-limited-lease': `${limit('lease', 'ip')}${SERVICES}routes:${route([LIMITED])}`,
  'gw-full': `${issuer(jwks)}${limit('lease', 'claim:sub')}${SERVICES}routes:${route([AUTH, LIMITED])}`,
  'gw-full-exact': `${issuer(jwks)}${limit('exact', 'claim:sub')}${SERVICES}routes:${route([AUTH, LIMITED])}`,
  'gw-scale-10': `${SERVICES}routes:\n${manyRoutes(10)}${route([])}`,
  'gw-scale-1000': `${SERVICES}routes:\n${manyRoutes(1000)}${route([])}`,
  'gw-scale-10000': `${SERVICES}routes:\n${manyRoutes(10000)}${route([])}`,
});

// ---- scenarios ---------------------------------------------------------------------------

interface Scenario {
  name: string;
  description: string;
  worker: string;
  path: string;
  headers?: (mesh: BenchMesh) => Promise<Record<string, string>>;
  /** Routes in the gateway's table, for the match-cost measurement. */
  routes?: number;
}

const bearer = async (m: BenchMesh) => ({ authorization: `Bearer ${await m.userToken('bench-user', ['read:b'])}` });
const clientIp = () => Promise.resolve({ 'cf-connecting-ip': '203.0.113.10' });
const asGateway = (target: string) => async (m: BenchMesh) => ({ 'x-mesh-identity': await m.gatewayIdentity(target) });

const SCENARIOS: Scenario[] = [
  {
    name: 'direct',
    description: 'service-b directly (baseline)',
    worker: 'service-b',
    path: '/service-b',
    headers: asGateway('service-b'),
  },
  {
    name: 'forward',
    description: 'gateway -> binding -> service-b, identity token, no policies',
    worker: 'gw-forward',
    path: '/service-b',
  },
  {
    name: 'auth',
    description: '+ JWT (ES256), verified-token cache',
    worker: 'gw-auth',
    path: '/service-b',
    headers: bearer,
  },
  {
    name: 'auth-nocache',
    description: '+ JWT (ES256), no cache: every request verifies',
    worker: 'gw-auth-nocache',
    path: '/service-b',
    headers: bearer,
  },
  {
    name: 'limited',
    description: '+ rate limit, exact mode (a Durable Object call each)',
    worker: 'gw-limited',
    path: '/service-b',
    headers: clientIp,
  },
  {
    name: 'limited-lease',
    description: '+ rate limit, lease mode',
    worker: 'gw-limited-lease',
    path: '/service-b',
    headers: clientIp,
  },
  {
    name: 'full',
    description: 'route + JWT + rate limit per user (lease) + identity',
    worker: 'gw-full',
    path: '/service-b',
    headers: bearer,
  },
  {
    name: 'full-exact',
    description: 'as full, rate limit in exact mode',
    worker: 'gw-full-exact',
    path: '/service-b',
    headers: bearer,
  },
  {
    name: 'east-west',
    description: 'service-a -> service-b through withMesh',
    worker: 'service-a',
    path: '/service-a',
    headers: asGateway('service-a'),
  },
  {
    name: 'east-west-raw',
    description: 'service-a -> service-b, plain binding call, no mesh',
    worker: 'raw-a',
    path: '/service-a',
  },
  {
    name: 'diy',
    description: 'one Hono worker: hono/jwk (JWKS fetched per request) + DO counter',
    worker: 'diy',
    path: '/service-b',
    headers: bearer,
  },
  { name: 'scale-10', description: 'forward with 10 routes', worker: 'gw-scale-10', path: '/service-b', routes: 10 },
  {
    name: 'scale-1000',
    description: 'forward with 1,000 routes',
    worker: 'gw-scale-1000',
    path: '/service-b',
    routes: 1000,
  },
  {
    name: 'scale-10000',
    description: 'forward with 10,000 routes',
    worker: 'gw-scale-10000',
    path: '/service-b',
    routes: 10000,
  },
];

// ---- options -----------------------------------------------------------------------------

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    scenarios: { type: 'string' },
    quick: { type: 'boolean', default: false },
    check: { type: 'boolean', default: false },
    out: { type: 'string', default: resolve(ROOT, 'bench/results.json') },
  },
});
const quick = values.quick;
const duration = quick ? 1 : Number(values.duration);
const latencySeconds = quick ? 0.5 : 3;
const connections = Number(values.connections);
// Quick (the check in npm test): three short rounds, so one slow second on a busy machine does not decide.
const rounds = quick ? 3 : Number(values.rounds);
const wanted = values.scenarios?.split(',').map((s) => s.trim()) ?? SCENARIOS.map((s) => s.name);
const unknown = wanted.filter((n) => !SCENARIOS.some((s) => s.name === n));
if (unknown.length || !(duration > 0) || !(connections > 0) || !(rounds > 0)) {
  console.error(
    unknown.length
      ? `unknown scenario(s): ${unknown.join(', ')} (known: ${SCENARIOS.map((s) => s.name).join(', ')})`
      : 'duration, connections and rounds must be positive numbers',
  );
  process.exit(2);
}
// forward is every ratio's denominator: always measured.
const scenarios = SCENARIOS.filter((s) => wanted.includes(s.name) || s.name === 'forward');

// ---- measurement -------------------------------------------------------------------------

function load(url: string, headers: Record<string, string> | undefined, seconds: number): Promise<autocannon.Result> {
  return new Promise((ok, fail) =>
    autocannon({ url, connections, duration: seconds, headers: headers ?? {} }, (e, r) =>
      e ? fail(e instanceof Error ? e : new Error(String(e))) : ok(r),
    ),
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * The check's throughput bounds: loose, so they catch a broken or badly regressed path, never
 * noise on a shared machine. Judged on medians of all rounds measured so far.
 */
function throughputFailures(samples: ReadonlyMap<string, number[]>): string[] {
  const med = (n: string) => (samples.get(n)?.length ? median(samples.get(n)!) : undefined);
  const ratio = (a: string, b: string) => {
    const x = med(a);
    const y = med(b);
    return x !== undefined && y !== undefined ? x / y : undefined;
  };
  const out: string[] = [];
  const atLeast = (what: string, value: number | undefined, min: number) => {
    if (value !== undefined && !(value >= min)) out.push(`${what} = ${value.toFixed(2)}, expected >= ${min}`);
  };
  atLeast('forward / direct throughput', ratio('forward', 'direct'), 0.15);
  atLeast('full / forward throughput', ratio('full', 'forward'), 0.4);
  atLeast('auth / auth-nocache throughput', ratio('auth', 'auth-nocache'), 1.1);
  atLeast('scale-10000 / scale-10 throughput', ratio('scale-10000', 'scale-10'), 0.5);
  return out;
}

/** ns per Router.find for a one-segment path and one of MAX_PATH_SEGMENTS segments, n routes. */
function deepMatchNs(n: number): { shallow: number; deep: number } {
  const bundle = bundleOf(`deep-${n}`, `${SERVICES}routes:\n${manyRoutes(n)}${route([])}`);
  const router = new Router(
    bundle.config.routes.map((r) => ({ route: r.name, ...(r.matches ? { matches: r.matches } : {}) })),
  );
  const time = (path: string) => {
    const url = new URL(`https://bench.example${path}`);
    const req = { host: url.hostname, path, method: 'GET', headers: new Headers(), url };
    for (let i = 0; i < 2000; i++) router.find(req);
    const start = process.hrtime.bigint();
    for (let i = 0; i < 20_000; i++) if (router.find(req)?.route !== 'service-b') throw new Error('wrong route');
    return Math.round(Number(process.hrtime.bigint() - start) / 20_000);
  };
  return { shallow: time('/service-b'), deep: time(`/service-b${'/a'.repeat(MAX_PATH_SEGMENTS - 1)}`) };
}

/** ns per Router.find on a table of n routes, timed in Node (the same code the gateway runs). */
function matchNs(n: number): number {
  const bundle = bundleOf(`match-${n}`, `${SERVICES}routes:\n${manyRoutes(n)}${route([])}`);
  const router = new Router(
    bundle.config.routes.map((r) => ({ route: r.name, ...(r.matches ? { matches: r.matches } : {}) })),
  );
  const url = new URL('https://bench.example/service-b');
  const req = { host: url.hostname, path: url.pathname, method: 'GET', headers: new Headers(), url };
  const iterations = 200_000;
  for (let i = 0; i < 10_000; i++) router.find(req);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) if (router.find(req)?.route !== 'service-b') throw new Error('wrong route');
  return Number(process.hrtime.bigint() - start) / iterations;
}

// The do-it-yourself peer's JWKS endpoint: a local server, as its middleware fetches per request.
let jwksBody = '{"keys":[]}';
const jwksServer = createServer((_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(jwksBody);
});
await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
const jwksPort = (jwksServer.address() as { port: number }).port;

const inspectorPort = await freePort();
const mesh = await startBenchMesh(gateways, { jwksUri: `http://127.0.0.1:${jwksPort}/jwks`, inspectorPort });
jwksBody = mesh.issuerJwks;

try {
  const urls = new Map<string, string>();
  const headers = new Map<string, Record<string, string> | undefined>();
  for (const s of scenarios) {
    urls.set(s.name, new URL(s.path, await mesh.url(s.worker)).href);
    headers.set(s.name, s.headers ? await s.headers(mesh) : undefined);
  }
  // Every scenario must answer 200 before it is measured: a failing one would time error paths.
  for (const s of scenarios) {
    const res = await fetch(urls.get(s.name)!, { headers: headers.get(s.name) ?? {} });
    if (res.status !== 200) throw new Error(`scenario ${s.name}: ${res.status} ${await res.text()}`);
  }
  for (const s of scenarios) await load(urls.get(s.name)!, headers.get(s.name), quick ? 0.3 : 1);

  const rps = new Map<string, number[]>(scenarios.map((s) => [s.name, []]));
  const errors = new Map<string, number>(scenarios.map((s) => [s.name, 0]));
  /** Rounds over every scenario, alternating their order, adding to `rps`. */
  const measure = async (n: number, label: string) => {
    for (let r = 0; r < n; r++) {
      for (const s of r % 2 ? [...scenarios].reverse() : scenarios) {
        const res = await load(urls.get(s.name)!, headers.get(s.name), duration);
        rps.get(s.name)!.push(res.requests.average);
        errors.set(s.name, errors.get(s.name)! + res.errors + res.timeouts + res.non2xx);
        process.stderr.write(`${label}round ${r + 1}/${n} ${s.name}: ${Math.round(res.requests.average)} req/s\n`);
      }
    }
  };
  await measure(rounds, '');
  // The check judges medians of throughput ratios; one that fails is measured again (as many
  // rounds more) before it counts: a busy machine slows every scenario, not one in particular.
  if (values.check && throughputFailures(rps).length > 0) {
    process.stderr.write(`throughput check failed (${throughputFailures(rps).join('; ')}): measuring again\n`);
    await measure(rounds, 're-');
  }
  const lat = new Map<string, Awaited<ReturnType<typeof latency>>>();
  for (const s of scenarios) {
    lat.set(s.name, await latency(urls.get(s.name)!, headers.get(s.name), latencySeconds));
    errors.set(s.name, errors.get(s.name)! + lat.get(s.name)!.errors);
  }
  const heap = new Map<string, number>();
  for (const s of scenarios) heap.set(s.name, await heapUsedMB(inspectorPort, s.worker));

  const forwardRps = median(rps.get('forward')!);
  const round3 = (x: number) => Math.round(x * 1000) / 1000;
  const rows = scenarios.map((s) => ({
    name: s.name,
    rps: Math.round(median(rps.get(s.name)!)),
    p50: round3(lat.get(s.name)!.p50),
    p90: round3(lat.get(s.name)!.p90),
    p99: round3(lat.get(s.name)!.p99),
    errors: errors.get(s.name)!,
    ratio: round3(median(rps.get(s.name)!) / forwardRps),
    heapMB: Math.round(heap.get(s.name)! * 10) / 10,
    ...(s.routes ? { matchNs: Math.round(matchNs(s.routes)) } : {}),
  }));

  const require = createRequire(import.meta.url);
  const meta = {
    date: new Date().toISOString(),
    commit: execSync('git rev-parse --short HEAD', { cwd: ROOT, encoding: 'utf8' }).trim(),
    node: process.version,
    workerd: (require('workerd/package.json') as { version: string }).version,
    connections,
    duration,
    rounds,
    latency: { connections: 2, seconds: latencySeconds },
  };
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify({ meta, scenarios: rows }, null, 2)}\n`);

  console.log(`\nmeshwork bench  ${meta.date}  commit ${meta.commit}  node ${meta.node}  workerd ${meta.workerd}`);
  console.log(
    `throughput: ${connections} connections, ${duration}s x ${rounds} round(s), median; latency: 2 connections, ${latencySeconds}s\n`,
  );
  console.log('scenario        req/s   ratio   p50 ms  p90 ms  p99 ms  errors  heap MB  match ns  description');
  for (const r of rows) {
    const d = SCENARIOS.find((s) => s.name === r.name)!.description;
    const m = 'matchNs' in r ? String(r.matchNs) : '';
    console.log(
      `${r.name.padEnd(14)} ${String(r.rps).padStart(6)}  ${r.ratio.toFixed(2).padStart(6)}  ${r.p50.toFixed(2).padStart(6)}  ${r.p90.toFixed(2).padStart(6)}  ${r.p99.toFixed(2).padStart(6)}  ${String(r.errors).padStart(6)}  ${r.heapMB.toFixed(1).padStart(7)}  ${m.padStart(8)}  ${d}`,
    );
  }
  console.log(`\nratio = req/s / forward's req/s. Wrote ${values.out}`);

  const failures: string[] = [];
  for (const r of rows) if (r.errors > 0) failures.push(`${r.name}: ${r.errors} failed requests`);
  if (values.check) {
    failures.push(...throughputFailures(rps));
    const get = (n: string) => rows.find((r) => r.name === n);
    const m10 = get('scale-10')?.matchNs;
    const m10k = get('scale-10000')?.matchNs;
    if (m10 !== undefined && m10k !== undefined && m10k > 3 * m10 + 200)
      failures.push(`match cost at 10,000 routes ${m10k} ns vs ${m10} ns at 10`);
    const heap10k = get('scale-10000')?.heapMB;
    if (heap10k !== undefined && heap10k >= 64)
      failures.push(`isolate heap with 10,000 routes ${heap10k} MB, expected < 64`);
    // A path of the most segments the gateway routes costs about as much to match as a short one.
    const deep = deepMatchNs(1000);
    if (deep.deep > 10 * deep.shallow + 2000)
      failures.push(
        `match cost of a ${MAX_PATH_SEGMENTS}-segment path ${deep.deep} ns vs ${deep.shallow} ns for one segment`,
      );
  }
  if (failures.length) {
    console.error(`\nbench check failed:\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  }
} finally {
  await mesh.mf.dispose();
  jwksServer.close();
}
