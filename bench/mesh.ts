/**
 * The benchmark mesh, in workerd through the Miniflare API: the example services (bundled with
 * a benchmark config), unwrapped twins of them, the do-it-yourself peer, and one gateway worker
 * per policy set, each compiled from its own config. Every measured worker gets its own socket
 * (unsafeDirectSockets), and an inspector port lets the bench read isolate heap sizes.
 */
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, importJWK } from 'jose';
import { Log, LogLevel, Miniflare, type WorkerOptions } from 'miniflare';
import { generatePair, memberPair, type KeyPair } from '../src/node/cli/keys.ts';
import { CONFIG_FORMAT, type MeshBundle } from '../src/config/schema.ts';
import { validateSources } from '../src/config/validate.ts';
import { bundleWorker } from '../scripts/bundle.ts';
import { freePort } from '../test/support/mesh-process.ts';

export const BENCH_ISSUER = 'https://bench.meshwork.local';
const COMPAT = '2026-04-01';

export interface BenchMesh {
  mf: Miniflare;
  url(worker: string): Promise<URL>;
  /** A user token the bench issuer signs, valid for the whole run. */
  userToken(sub: string, scopes: string[]): Promise<string>;
  /** The gateway's identity token for a service, long-lived so direct calls stay valid all run. */
  gatewayIdentity(target: string): Promise<string>;
  issuerJwks: string;
  /** workerd's inspector (isolate heaps, profiles). */
  inspectorPort: number;
  /** Spans the local collector has received so far (the observed scenarios export to it). */
  spansReceived(): number;
  /** Bytes the workers wrote to their console (stdout) so far. */
  logBytes(): number;
  /** Stops workerd and the key-set endpoint. */
  close(): Promise<void>;
}

/** The example services run with this config: no limits of their own, so only the scenario's policies count. */
const SERVICES_CONFIG = `
services:
  service-a:
    backends: [{ binding: SERVICE_A }]
  service-b:
    backends: [{ binding: SERVICE_B }]
    policy:
      allowAnonymous: true   # the do-it-yourself peers have no mesh identity
routes: []
`;

export function bundleOf(name: string, yaml: string): MeshBundle {
  const r = validateSources([{ name: `${name}.yaml`, text: yaml }]);
  if (!r.ok) throw new Error(`bench config ${name} is invalid: ${JSON.stringify(r.errors.slice(0, 3))}`);
  return { version: name, format: CONFIG_FORMAT, config: r.config };
}

export async function startBenchMesh(
  gatewaysFor: (issuerJwks: string, collectorUrl: string) => Record<string, string>,
): Promise<BenchMesh> {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-bench-'));
  const members: Record<string, KeyPair> = {};
  for (const m of ['gateway', 'service-a', 'service-b']) members[m] = await memberPair(m);
  const issuer = await generatePair('ES256', 'bench-1');
  const issuerJwks = JSON.stringify({ keys: [issuer.publicJwk] });
  // The issuer's key-set endpoint, a local server: the do-it-yourself peers fetch it (one per
  // request, one once and then from its cache).
  const jwksServer = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(issuerJwks);
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
  // An OTLP/HTTP collector for the observed scenarios: reads each export and counts its spans.
  let spansReceived = 0;
  let logBytes = 0;
  const collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: Array<{ scopeSpans: Array<{ spans: unknown[] }> }>;
      };
      for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spansReceived += ss.spans.length;
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  const collectorUrl = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  const inspectorPort = await freePort();
  const publicKeys = JSON.stringify({ keys: Object.values(members).map((k) => k.publicJwk) });
  const keysFor = (member: string) => ({
    MESH_SIGNING_KEY: JSON.stringify(members[member]!.privateJwk),
    MESH_PUBLIC_KEYS: publicKeys,
  });
  const services = bundleOf('bench-services', SERVICES_CONFIG);

  const worker = (name: string, scriptPath: string, extra: Partial<WorkerOptions> = {}): WorkerOptions =>
    ({
      name,
      modules: true,
      modulesRoot: dir,
      scriptPath,
      compatibilityDate: COMPAT,
      unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
      ...extra,
    }) as WorkerOptions;

  const workers: WorkerOptions[] = [
    worker('service-b', await bundleWorker('examples/service-b/src/index.ts', dir, undefined, 'service-b', services), {
      bindings: { ...keysFor('service-b'), VERSION: 'v1' },
    }),
    worker('service-a', await bundleWorker('examples/service-a/src/index.ts', dir, undefined, 'service-a', services), {
      bindings: keysFor('service-a'),
      serviceBindings: { SERVICE_B: 'service-b' },
    }),
    worker('raw-b', await bundleWorker('bench/workers/raw-b.ts', dir)),
    worker('raw-a', await bundleWorker('bench/workers/raw-a.ts', dir), { serviceBindings: { SERVICE_B: 'raw-b' } }),
    worker('diy', await bundleWorker('bench/workers/diy.ts', dir), {
      bindings: { JWKS_URI: jwksUri },
      durableObjects: { COUNTER: { className: 'Counter', useSQLite: true } },
      serviceBindings: { SERVICE_B: 'service-b' },
    }),
    worker('diy-jose', await bundleWorker('bench/workers/diy-jose.ts', dir), {
      bindings: { JWKS_URI: jwksUri, ISSUER: BENCH_ISSUER },
      durableObjects: { BUCKET: { className: 'TokenBucket', useSQLite: true } },
      serviceBindings: { SERVICE_B: 'service-b' },
    }),
    worker('unhealthy-503', await bundleWorker('bench/workers/unhealthy.ts', dir), { bindings: { MODE: '503' } }),
    worker('unhealthy-hang', await bundleWorker('bench/workers/unhealthy.ts', dir, undefined, 'unhealthy-hang'), {
      bindings: { MODE: 'hang' },
    }),
    worker('hono-forward', await bundleWorker('bench/workers/hono-forward.ts', dir), {
      serviceBindings: { SERVICE_B: 'service-b' },
    }),
  ];
  for (const [name, yaml] of Object.entries(gatewaysFor(issuerJwks, collectorUrl))) {
    const scriptPath = await bundleWorker(
      'bench/workers/gateway.ts',
      dir,
      { __MESH_BUNDLE__: JSON.stringify(bundleOf(name, yaml)) },
      name,
    );
    workers.push(
      worker(name, scriptPath, {
        bindings: keysFor('gateway'),
        kvNamespaces: ['MESH_KV'],
        durableObjects: {
          MESH_RATE_LIMITER: { className: 'RateLimiter', useSQLite: true },
          MESH_TELEMETRY: { className: 'MeshTelemetry', useSQLite: true },
        },
        serviceBindings: {
          SERVICE_B: 'service-b',
          SERVICE_B2: 'service-b',
          SERVICE_B3: 'service-b',
          UNHEALTHY_503: 'unhealthy-503',
          UNHEALTHY_HANG: 'unhealthy-hang',
        },
      }),
    );
  }

  const mf = new Miniflare({
    workers: workers as [WorkerOptions, ...WorkerOptions[]],
    cf: false,
    inspectorPort,
    log: new Log(LogLevel.WARN),
    defaultPersistRoot: join(dir, 'state'),
    // The workers' console (access logs of the observed scenarios): read and counted, not
    // printed, as Workers Logs would take it; warnings and errors still show.
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      stdout.on('data', (chunk: Buffer) => {
        logBytes += chunk.length;
      });
      stderr.pipe(process.stderr);
    },
  });
  await mf.ready;

  return {
    mf,
    issuerJwks,
    inspectorPort,
    async close() {
      await mf.dispose();
      jwksServer.close();
      collector.close();
    },
    url: (w) => mf.unsafeGetDirectURL(w),
    spansReceived: () => spansReceived,
    logBytes: () => logBytes,
    async userToken(sub, scopes) {
      return new SignJWT({ scope: scopes.join(' ') })
        .setProtectedHeader({ alg: 'ES256', kid: 'bench-1' })
        .setIssuer(BENCH_ISSUER)
        .setAudience('meshwork')
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime('2h')
        .sign(await importJWK(issuer.privateJwk, 'ES256'));
    },
    async gatewayIdentity(target) {
      const jwk = members.gateway!.privateJwk;
      return new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid!, typ: 'mesh-id+jwt' })
        .setIssuer('meshwork')
        .setSubject('gateway')
        .setAudience(target)
        .setIssuedAt()
        .setExpirationTime('2h')
        .sign(await importJWK(jwk, 'EdDSA'));
    },
  };
}
