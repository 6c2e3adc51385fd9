/**
 * The benchmark mesh: gateway variants (one per policy set, each compiled from its own config),
 * the example service-b as the backend, and keys minted for the run. Every measured worker gets
 * its own direct socket.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, importJWK } from 'jose';
import { Log, LogLevel, Miniflare, type WorkerOptions } from 'miniflare';
import { generatePair, memberPair, type KeyPair } from '../src/cli/keys.ts';
import type { MeshBundle, MeshConfig } from '../src/config/schema.ts';
import { validateSources } from '../src/config/validate.ts';
import { bundleWorker, workerOptionsFrom } from '../scripts/local-mesh.ts';

export const BENCH_ISSUER = 'https://bench.meshwork.local';

export interface BenchKeys {
  members: Record<string, KeyPair>;
  issuer: KeyPair;
}

export interface BenchMesh {
  mf: Miniflare;
  keys: BenchKeys;
  url(worker: string): Promise<URL>;
  /** A user token the bench issuer signs, valid for the whole run. */
  userToken(sub: string, scopes: string[]): Promise<string>;
  /** The gateway's identity token for service-b, long-lived so direct calls stay valid all run. */
  gatewayIdentity(target: string): Promise<string>;
}

/** Gateway variants by worker name: each a full config (validated like routes/). */
export type GatewayVariants = Record<string, (issuerJwks: string) => string>;

function bundleOf(name: string, yaml: string): MeshBundle {
  const r = validateSources([{ name: `${name}.yaml`, text: yaml }]);
  if (!r.ok) throw new Error(`bench config ${name} is invalid: ${JSON.stringify(r.errors)}`);
  return { version: name, config: r.config as MeshConfig };
}

export async function startBenchMesh(variants: GatewayVariants, extraWorkers: (dir: string, keys: BenchKeys) => Promise<WorkerOptions[]> = async () => []): Promise<BenchMesh> {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-bench-'));
  const keys: BenchKeys = {
    members: { gateway: await memberPair('gateway'), 'service-a': await memberPair('service-a'), 'service-b': await memberPair('service-b') },
    issuer: await generatePair('ES256', 'bench-1'),
  };
  const publicKeys = JSON.stringify({ keys: Object.values(keys.members).map((k) => k.publicJwk) });
  const meshBindings = (member: string) => ({ MESH_SIGNING_KEY: JSON.stringify(keys.members[member]!.privateJwk), MESH_PUBLIC_KEYS: publicKeys });
  const issuerJwks = JSON.stringify({ keys: [keys.issuer.publicJwk] });

  const workers: WorkerOptions[] = [];
  const serviceB = await workerOptionsFrom('examples/service-b/wrangler.toml', dir);
  // service-b's own limits (calls from service-a) use the gateway's store, here the first variant's.
  const store = Object.keys(variants)[0]!;
  workers.push({
    ...serviceB,
    bindings: { ...(serviceB.bindings as object), ...meshBindings('service-b'), VERSION: 'v1' },
    durableObjects: { MESH_RATE_LIMITER: { className: 'RateLimiter', scriptName: store } },
  } as WorkerOptions);
  for (const [name, yaml] of Object.entries(variants)) {
    const bundle = bundleOf(name, yaml(issuerJwks));
    const scriptPath = await bundleWorker('bench/gateway-entry.ts', dir, { __MESH_BUNDLE__: JSON.stringify(bundle) }, name);
    workers.push({
      name,
      modules: true,
      modulesRoot: dir,
      scriptPath,
      compatibilityDate: '2026-04-01',
      bindings: meshBindings('gateway'),
      kvNamespaces: ['MESH_KV'],
      durableObjects: { MESH_RATE_LIMITER: { className: 'RateLimiter', useSQLite: true } },
      serviceBindings: { SERVICE_B: 'service-b' },
    } as WorkerOptions);
  }
  workers.push(...(await extraWorkers(dir, keys)));
  for (const w of workers) w.unsafeDirectSockets = [{ host: '127.0.0.1', port: 0 }];

  const mf = new Miniflare({ workers: workers as [WorkerOptions, ...WorkerOptions[]], cf: false, log: new Log(LogLevel.WARN), defaultPersistRoot: join(dir, 'state') });
  await mf.ready;

  return {
    mf,
    keys,
    url: (worker) => mf.unsafeGetDirectURL(worker),
    async userToken(sub, scopes) {
      return new SignJWT({ scope: scopes.join(' ') })
        .setProtectedHeader({ alg: 'ES256', kid: 'bench-1' })
        .setIssuer(BENCH_ISSUER)
        .setAudience('meshwork')
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime('2h')
        .sign(await importJWK(keys.issuer.privateJwk, 'ES256'));
    },
    async gatewayIdentity(target) {
      const jwk = keys.members.gateway!.privateJwk;
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
