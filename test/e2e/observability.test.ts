/**
 * Access logs and traces from the local mesh (`npm run dev`'s wrangler dev and workerd, real
 * HTTP): a local OTLP/HTTP collector receives the spans of gateway -> service-a -> service-b,
 * one per hop and one per try; the access log lines are read from the mesh's own output, and
 * that whole output is searched for every token and key the test used.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localFetch } from '../support/local-http.ts';
import { startMesh, type RunningMesh } from '../support/mesh-process.ts';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
  status: { code?: number };
}
type Received = { service: string; span: OtlpSpan };

let mesh: RunningMesh;
let collector: Server;
let collectorUrl: string;
const received: Received[] = [];
const exports: Array<{ contentType: string | undefined; body: unknown }> = [];
/** Every credential the test hands the mesh: none may appear in its output. */
const secrets = new Set<string>();

function meshwork(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/meshwork.js', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`meshwork ${args[0]} failed: ${r.stderr}`);
  return r.stdout;
}

function userToken(sub: string): string {
  const token = meshwork('token', '--sub', sub, '--scope', 'read:a').trim().split('\n').at(-1)!;
  secrets.add(token);
  return token;
}

const TRACED = `
observability:
  tracing:
    collector: COLLECTOR
    sampling: 1
    flushInterval: 200ms
  metrics:
    flushInterval: 200ms
  accessLog:
    user: hashed
network:
  allowLoopbackBackends: true
`;
const FLAKY_SERVICE = `  flaky:
    backends:
      - url: COLLECTOR/fail
`;
const FLAKY_ROUTE = `
  - name: flaky
    matches: [{ path: { prefix: /flaky } }]
    service: flaky
    rewrite: { pathPrefix: / }
    retry: { attempts: 2, codes: [503], backoff: 10ms }
`;

/** routes/ with tracing to the local collector and a retried route to a backend that fails. */
function tracedRoutes(): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-obs-routes-'));
  cpSync('routes', dir, { recursive: true });
  const file = join(dir, 'mesh.yaml');
  const at = (t: string) => t.replace(/COLLECTOR/g, collectorUrl);
  // The extra service joins the services section; the extra route goes last (routes is the last section).
  const text = readFileSync(file, 'utf8').replace(/^services:\n/m, `services:\n${at(FLAKY_SERVICE)}`);
  writeFileSync(file, `${at(TRACED)}\n${text}${FLAKY_ROUTE}`);
  return dir;
}

async function until<T>(what: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await what();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting; last saw ${JSON.stringify(v).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const spansOf = (traceId: string) => received.filter((r) => r.span.traceId === traceId);
const attr = (s: OtlpSpan, key: string) => s.attributes.find((a) => a.key === key)?.value;
const hex = (n: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, '0')).join('');

beforeAll(async () => {
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.method === 'POST') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        exports.push({ contentType: req.headers['content-type'], body });
        for (const rs of body.resourceSpans ?? []) {
          const service = rs.resource.attributes.find((a: { key: string }) => a.key === 'service.name')?.value
            .stringValue;
          for (const ss of rs.scopeSpans) for (const span of ss.spans) received.push({ service, span });
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        return;
      }
      // The flaky backend: always 503, so the route's retries all run.
      res.writeHead(503, { 'content-type': 'text/plain' }).end('down');
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  const addr = collector.address();
  collectorUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  mesh = await startMesh();
  const keys = JSON.parse(readFileSync('.meshwork/dev-keys.json', 'utf8'));
  secrets.add(keys.adminToken);
  secrets.add(keys.issuer.privateJwk.d);
  for (const m of Object.values(keys.members) as Array<{ privateJwk: { d: string } }>) secrets.add(m.privateJwk.d);
  meshwork('apply', tracedRoutes(), '-m', 'tracing on', '--url', mesh.url);
  // Every worker serves the applied config once the flaky route answers and services export spans.
  const token = userToken('warmup');
  await until(
    async () => {
      await (await localFetch(`${mesh.url}/flaky/x`)).arrayBuffer();
      const traceId = hex(16);
      const res = await localFetch(`${mesh.url}/service-a`, {
        headers: { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${hex(8)}-01` },
      });
      await res.arrayBuffer();
      await new Promise((r) => setTimeout(r, 500));
      return new Set(spansOf(traceId).map((s) => s.service));
    },
    (services) => services.has('service-b') && services.has('service-a') && services.has('meshwork-gateway'),
    60_000,
  );
}, 180_000);

afterAll(async () => {
  await mesh?.stop();
  await new Promise((r) => collector?.close(r));
});

describe('traces', () => {
  it('gateway -> service-a -> service-b: a server span per hop and a client span per try, each the parent of the next', async () => {
    const traceId = hex(16);
    const clientSpan = hex(8);
    const token = userToken('alice');
    const res = await localFetch(`${mesh.url}/service-a?secret=dont-log-me`, {
      headers: { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${clientSpan}-01`, tracestate: 'x=1' },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const spans = await until(
      () => spansOf(traceId),
      (s) => s.length >= 5,
    );
    const find = (service: string, kind: number) => {
      const found = spans.filter((s) => s.service === service && s.span.kind === kind);
      expect(found, `${service} kind ${kind}`).toHaveLength(1);
      return found[0]!.span;
    };
    const gatewayServer = find('meshwork-gateway', 2);
    const gatewayClient = find('meshwork-gateway', 3);
    const aServer = find('service-a', 2);
    const aClient = find('service-a', 3);
    const bServer = find('service-b', 2);
    expect(gatewayServer.parentSpanId).toBe(clientSpan);
    expect(gatewayClient.parentSpanId).toBe(gatewayServer.spanId);
    expect(aServer.parentSpanId).toBe(gatewayClient.spanId);
    expect(aClient.parentSpanId).toBe(aServer.spanId);
    expect(bServer.parentSpanId).toBe(aClient.spanId);
    for (const { span } of spans) {
      // The OTLP JSON encoding: lowercase hex ids of 16 and 8 bytes, times as decimal strings.
      expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
      expect(span.startTimeUnixNano).toMatch(/^\d{19}$/);
      expect(BigInt(span.endTimeUnixNano) >= BigInt(span.startTimeUnixNano)).toBe(true);
    }
    expect(attr(gatewayServer, 'http.route')).toEqual({ stringValue: 'service-a' });
    expect(attr(gatewayServer, 'http.response.status_code')).toEqual({ intValue: '200' });
    expect(attr(aClient, 'meshwork.service')).toEqual({ stringValue: 'service-b' });
    expect(exports.every((e) => e.contentType === 'application/json')).toBe(true);
  });

  it('a retried call has a client span per try, numbered, all children of the hop', async () => {
    const traceId = hex(16);
    const res = await localFetch(`${mesh.url}/flaky/x`, { headers: { traceparent: `00-${traceId}-${hex(8)}-01` } });
    expect(res.status).toBe(503);
    await res.arrayBuffer();
    const spans = await until(
      () => spansOf(traceId),
      (s) => s.length >= 4,
    );
    const server = spans.find((s) => s.span.kind === 2)!.span;
    const tries = spans.filter((s) => s.span.kind === 3).map((s) => s.span);
    expect(tries.map((t) => attr(t, 'meshwork.retry'))).toEqual(
      expect.arrayContaining([{ intValue: '0' }, { intValue: '1' }, { intValue: '2' }]),
    );
    expect(tries).toHaveLength(3);
    for (const t of tries) {
      expect(t.parentSpanId).toBe(server.spanId);
      expect(t.status).toEqual({ code: 2 });
    }
    expect(attr(server, 'meshwork.response_flags')).toEqual({ stringValue: 'URX' });
  });

  it('an unsampled request records nothing, and passes its decision on', async () => {
    const traceId = hex(16);
    const token = userToken('bob');
    const res = await localFetch(`${mesh.url}/service-a`, {
      headers: { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${hex(8)}-00` },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    // Long enough for every worker's flush (200 ms) several times over.
    await new Promise((r) => setTimeout(r, 2000));
    expect(spansOf(traceId)).toEqual([]);
  });
});

describe('access logs', () => {
  type Line = Record<string, unknown>;
  const lines = (): Line[] =>
    mesh
      .output()
      .split('\n')
      .map((l) => l.slice(l.indexOf('{')))
      .filter((l) => l.startsWith('{"level":"info","msg":"access"'))
      .map((l) => JSON.parse(l) as Line);

  it('one JSON line per request at the gateway and per east-west call, with the fields operators filter on', async () => {
    const token = userToken('carol');
    const res = await localFetch(`${mesh.url}/service-a?page=2&token=hunter2`, {
      headers: { authorization: `Bearer ${token}`, 'x-request-id': 'access-log-1' },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const mine = await until(
      () => lines().filter((l) => l.requestId === 'access-log-1'),
      (l) => l.length >= 2,
    );
    const gateway = mine.find((l) => l.kind === 'gateway')!;
    const eastWest = mine.find((l) => l.kind === 'mesh')!;
    expect(gateway).toMatchObject({
      route: 'service-a',
      caller: 'client',
      service: 'service-a',
      method: 'GET',
      path: '/service-a',
      query: '?page=&token=',
      status: 200,
      flags: '-',
      auth: 'ok',
      rateLimit: 'allowed',
      retries: 0,
    });
    expect(gateway.time).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(gateway.durationMs).toEqual(expect.any(Number));
    expect(gateway.traceId).toMatch(/^[0-9a-f]{32}$/);
    // accessLog.user: hashed: the same user groups, the name is not written.
    expect(gateway.user).toMatch(/^[0-9a-f]{16}$/);
    expect(eastWest).toMatchObject({ caller: 'service-a', service: 'service-b', status: 200, path: '/service-b' });
    expect(eastWest.user).toBe(gateway.user);
    expect(eastWest.traceId).toBe(gateway.traceId);
    expect(JSON.stringify(mine)).not.toContain('hunter2');
    expect(JSON.stringify(mine)).not.toContain('carol');
  });

  it('the mesh answering instead of a backend: its error code and Envoy response flag', async () => {
    const res = await localFetch(`${mesh.url}/nowhere`, { headers: { 'x-request-id': 'access-log-404' } });
    expect(res.status).toBe(404);
    await res.arrayBuffer();
    const bad = await localFetch(`${mesh.url}/service-a`, {
      headers: { authorization: 'Bearer not-a-jwt', 'x-request-id': 'access-log-401' },
    });
    expect(bad.status).toBe(401);
    await bad.arrayBuffer();
    const [noRoute] = await until(
      () => lines().filter((l) => l.requestId === 'access-log-404'),
      (l) => l.length === 1,
    );
    expect(noRoute).toMatchObject({ status: 404, flags: 'NR', meshError: 'route_not_found' });
    const [refused] = await until(
      () => lines().filter((l) => l.requestId === 'access-log-401'),
      (l) => l.length === 1,
    );
    expect(refused).toMatchObject({ status: 401, flags: 'UAEX', auth: 'invalid_token', meshError: 'invalid_token' });
  });

  it('never writes a token, key or secret: the whole output of the run searched for each one used', async () => {
    // The admin API and the metrics endpoint with the admin token, a bad admin token too.
    for (const path of ['/_mesh/admin/status', '/_mesh/metrics', '/_mesh/admin/telemetry']) {
      const res = await localFetch(`${mesh.url}${path}`, { headers: { authorization: `Bearer ${[...secrets][0]}` } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const wrong = 'wrong-admin-token-0123456789abcdef';
    secrets.add(wrong);
    await (
      await localFetch(`${mesh.url}/_mesh/admin/status`, { headers: { authorization: `Bearer ${wrong}` } })
    ).arrayBuffer();
    await new Promise((r) => setTimeout(r, 1000));
    const output = mesh.output();
    expect(output.length).toBeGreaterThan(1000);
    expect(lines().length).toBeGreaterThan(10);
    for (const secret of secrets)
      expect(output.includes(secret), `a secret (${secret.slice(0, 6)}...) was logged`).toBe(false);
    // Nor any JWT at all (identity tokens and assertions are minted inside the mesh).
    expect(output).not.toMatch(/eyJ[\w-]{10,}\.eyJ[\w-]{10,}\./);
  });
});
