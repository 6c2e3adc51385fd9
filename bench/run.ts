/**
 * `npm run bench`: what the mesh costs per request, measured against the direct path in the
 * same run. Workers run in workerd through the Miniflare API; each measured worker is served on
 * its own socket (unsafeDirectSockets), because wrangler dev's proxy and Miniflare's entry worker
 * each cut throughput several-fold and would hide the mesh's own cost. Load comes from
 * autocannon. Scenarios alternate round by round so drift on a shared machine hits all alike.
 *
 *   npm run bench -- [--duration 5] [--connections 32] [--rounds 3] [--scenarios direct,forward] [--quick]
 *
 * Prints a table and writes bench/results.json. Quote ratios, not absolute numbers.
 */
import autocannon from 'autocannon';
import { execSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../scripts/local-mesh.ts';
import { BENCH_ISSUER, startBenchMesh, type BenchMesh } from './mesh.ts';

interface Scenario {
  name: string;
  description: string;
  /** Worker whose direct socket receives the load. */
  worker: string;
  path: string;
  headers?: (mesh: BenchMesh) => Promise<Record<string, string>>;
}

const SERVICES = `
services:
  service-b:
    backends:
      - binding: SERVICE_B
`;

const route = (auth: string) => `
routes:
  - name: service-b
    matches: [{ path: { prefix: /service-b } }]
    service: service-b
${auth}`;

const issuer = (jwks: string, cache = '') => `
auth:
  issuers:
    bench:
      issuer: ${BENCH_ISSUER}
      audiences: [meshwork]
      algorithms: [ES256]
      jwks: ${jwks}
${cache}`;

const AUTH_ROUTE = '    auth: { scopes: [read:b] }';
// One hot key (every bench request has the same client address) that never runs out: the
// bench measures what checking a limit costs, not rejections.
const limits = (mode: string) => `
rateLimits:
  bench:
    limit: 1000000000
    period: 1s
    key: [ip]
    mode: ${mode}
`;
const LIMITED_ROUTE = '    rateLimits: [bench]';

/** Gateway variants, each its own worker compiled from its own config. */
const GATEWAYS = {
  'gw-forward': () => SERVICES + route(''),
  'gw-auth': (jwks: string) => issuer(jwks) + SERVICES + route(AUTH_ROUTE),
  'gw-auth-nocache': (jwks: string) => issuer(jwks, '  verifiedCache: { maxEntries: 0 }') + SERVICES + route(AUTH_ROUTE),
  'gw-limited': () => limits('exact') + SERVICES + route(LIMITED_ROUTE),
  'gw-limited-lease': () => limits('lease') + SERVICES + route(LIMITED_ROUTE),
};

const clientIp = async () => ({ 'cf-connecting-ip': '203.0.113.10' });
const bearer = async (m: BenchMesh) => ({ authorization: `Bearer ${await m.userToken('bench-user', ['read:b'])}` });

const SCENARIOS: Scenario[] = [
  {
    name: 'direct',
    description: 'service-b hit directly (baseline; carries a gateway identity token)',
    worker: 'service-b',
    path: '/service-b',
    headers: async (m) => ({ 'x-mesh-identity': await m.gatewayIdentity('service-b') }),
  },
  { name: 'forward', description: 'gateway -> service binding -> service-b, no policies', worker: 'gw-forward', path: '/service-b' },
  { name: 'auth', description: '+ JWT verification (ES256), verified-token cache on', worker: 'gw-auth', path: '/service-b', headers: bearer },
  { name: 'auth-nocache', description: '+ JWT verification (ES256), cache off: every request verifies', worker: 'gw-auth-nocache', path: '/service-b', headers: bearer },
  { name: 'limited', description: '+ rate limit, exact mode (a Durable Object call per request)', worker: 'gw-limited', path: '/service-b', headers: clientIp },
  { name: 'limited-lease', description: '+ rate limit, lease mode (isolate spends leases locally)', worker: 'gw-limited-lease', path: '/service-b', headers: clientIp },
];

interface Round {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  errors: number;
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    scenarios: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: resolve(ROOT, 'bench/results.json') },
  },
});

const quick = values.quick!;
const duration = quick ? 2 : Number(values.duration);
const connections = Number(values.connections);
const rounds = quick ? 1 : Number(values.rounds);
const wanted = values.scenarios?.split(',').map((s) => s.trim()) ?? SCENARIOS.map((s) => s.name);
const unknown = wanted.filter((n) => !SCENARIOS.some((s) => s.name === n));
if (unknown.length || !(duration > 0) || !(connections > 0) || !(rounds > 0)) {
  console.error(unknown.length ? `unknown scenario(s): ${unknown.join(', ')} (known: ${SCENARIOS.map((s) => s.name).join(', ')})` : 'duration, connections and rounds must be positive numbers');
  process.exit(2);
}
const scenarios = SCENARIOS.filter((s) => wanted.includes(s.name) || s.name === 'forward');

function load(url: string, headers: Record<string, string> | undefined, seconds: number): Promise<autocannon.Result> {
  return new Promise((resolvePromise, reject) => {
    autocannon({ url, connections, duration: seconds, headers: headers ?? {} }, (err, result) => (err ? reject(err) : resolvePromise(result)));
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const mesh = await startBenchMesh(GATEWAYS);
try {
  const urls = new Map<string, string>();
  const headers = new Map<string, Record<string, string> | undefined>();
  for (const s of scenarios) {
    urls.set(s.name, new URL(s.path, await mesh.url(s.worker)).href);
    headers.set(s.name, s.headers ? await s.headers(mesh) : undefined);
  }

  // Every scenario must work before it is measured: a failing one would measure error paths.
  for (const s of scenarios) {
    const res = await fetch(urls.get(s.name)!, { headers: headers.get(s.name) ?? {} });
    if (res.status !== 200) throw new Error(`scenario ${s.name}: ${res.status} ${await res.text()}`);
  }
  // Warm every isolate (compile, JIT) before anything is measured.
  for (const s of scenarios) await load(urls.get(s.name)!, headers.get(s.name), 1);

  const results = new Map<string, Round[]>(scenarios.map((s) => [s.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const s of r % 2 ? [...scenarios].reverse() : scenarios) {
      const res = await load(urls.get(s.name)!, headers.get(s.name), duration);
      results.get(s.name)!.push({
        rps: res.requests.average,
        p50: res.latency.p50,
        p90: res.latency.p90,
        p99: res.latency.p99,
        errors: res.errors + res.timeouts + res.non2xx,
      });
      process.stderr.write(`round ${r + 1}/${rounds} ${s.name}: ${Math.round(res.requests.average)} req/s\n`);
    }
  }

  const summary = scenarios.map((s) => {
    const rs = results.get(s.name)!;
    return { name: s.name, rps: median(rs.map((x) => x.rps)), p50: median(rs.map((x) => x.p50)), p90: median(rs.map((x) => x.p90)), p99: median(rs.map((x) => x.p99)), errors: rs.reduce((a, x) => a + x.errors, 0) };
  });
  const forwardRps = summary.find((s) => s.name === 'forward')!.rps;
  const rows = summary.map((s) => ({ ...s, rps: Math.round(s.rps), ratio: Number((s.rps / forwardRps).toFixed(3)) }));

  const require = createRequire(import.meta.url);
  const meta = {
    date: new Date().toISOString(),
    commit: execSync('git rev-parse --short HEAD', { cwd: ROOT, encoding: 'utf8' }).trim(),
    node: process.version,
    workerd: (require('workerd/package.json') as { version: string }).version,
    connections,
    duration,
    rounds,
  };
  writeFileSync(values.out!, `${JSON.stringify({ meta, scenarios: rows }, null, 2)}\n`);

  console.log(`\nmeshwork bench  ${meta.date}  commit ${meta.commit}  node ${meta.node}  workerd ${meta.workerd}`);
  console.log(`${connections} connections, ${duration}s x ${rounds} round(s) per scenario; medians of rounds\n`);
  console.log('scenario        req/s    p50 ms  p90 ms  p99 ms  errors  ratio   description');
  for (const r of rows) {
    const desc = SCENARIOS.find((s) => s.name === r.name)!.description;
    console.log(`${r.name.padEnd(14)} ${String(r.rps).padStart(6)}  ${r.p50.toFixed(1).padStart(7)} ${r.p90.toFixed(1).padStart(7)} ${r.p99.toFixed(1).padStart(7)} ${String(r.errors).padStart(7)}  ${r.ratio.toFixed(2).padStart(5)}   ${desc}`);
  }
  console.log(`\nratio = req/s / forward's req/s. Wrote ${values.out}`);

  const errors = rows.reduce((a, r) => a + r.errors, 0);
  if (errors > 0) {
    console.error(`bench: ${errors} failed requests`);
    process.exitCode = 1;
  }
} finally {
  await mesh.mf.dispose();
}
