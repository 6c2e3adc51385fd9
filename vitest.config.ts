import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

/** As every worker's wrangler config maps them: the package by its name, the compiled routes. */
const MESH_ALIASES = [
  { find: /^meshwork$/, replacement: resolve('src/wrapper/index.ts') },
  { find: /^meshwork\/config$/, replacement: resolve('.meshwork/mesh-config.json') },
];

const COMPAT_DATE = '2026-04-01';

/**
 * Three projects:
 *  - unit:    Node; config schema, matcher, compiler, CLI.
 *  - workers: inside workerd (vitest-pool-workers) with real service bindings, KV and DOs.
 *  - e2e:     Node; starts the local mesh (wrangler dev) and sends real HTTP through it.
 */
export default defineConfig({
  test: {
    projects: [
      {
        // CLI tests spawn processes (tsx, wrangler's config reader): slow on a loaded machine.
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], environment: 'node', testTimeout: 30_000 },
      },
      {
        resolve: { alias: MESH_ALIASES },
        plugins: [
          cloudflareTest(({ inject }) => {
            const keys = inject('memberKeys');
            const meshKeys = (member: string) => ({
              MESH_SIGNING_KEY: JSON.stringify(keys[member]!.privateJwk),
              MESH_PUBLIC_KEYS: inject('meshPublicKeys'),
            });
            const bundles = inject('bundles');
            const js = (name: string, scriptPath: string, extra: Record<string, unknown> = {}) => ({
              name,
              modules: true,
              scriptPath,
              compatibilityDate: COMPAT_DATE,
              ...extra,
            });
            // The real gateway bundle hosts the RateLimiter Durable Object class, as in production.
            // Tests standing in for the gateway bind it; services reach it through the entrypoint.
            const limiter = { MESH_RATE_LIMITER: { className: 'RateLimiter', scriptName: 'meshwork-gateway' } };
            const limits = { MESH_RATE_LIMITER: { name: 'meshwork-gateway', entrypoint: 'RateLimits' } };
            // Services reach the registry only through the gateway's heartbeat entrypoint.
            const heartbeat = {
              MESH_REGISTRY: { name: 'meshwork-gateway', entrypoint: 'RegistryHeartbeat' },
              // and report their metrics through its Telemetry entrypoint.
              MESH_TELEMETRY: { name: 'meshwork-gateway', entrypoint: 'Telemetry' },
            };
            // One KV namespace for every worker, as in production: the registry's snapshots.
            const kv = { MESH_KV: 'mesh-kv' };
            const serviceB = (name: string, version: string) =>
              js(name, bundles.serviceB, {
                modulesRoot: bundles.dir,
                bindings: { ...meshKeys('service-b'), VERSION: version },
                serviceBindings: { ...heartbeat, ...limits },
                kvNamespaces: kv,
              });
            return {
              miniflare: {
                compatibilityDate: COMPAT_DATE,
                kvNamespaces: kv,
                durableObjects: {
                  ...limiter,
                  MESH_REGISTRY: { className: 'MeshRegistry', scriptName: 'meshwork-gateway' },
                  // Not MESH_TELEMETRY: gateways built in a test send no metrics (and so keep no
                  // flush timer the test would wait for) unless the test binds this as MESH_TELEMETRY.
                  TELEMETRY_STORE: { className: 'MeshTelemetry', scriptName: 'meshwork-gateway' },
                  FAULTY_LIMITER: { className: 'RateLimiter', scriptName: 'faulty-store' },
                  FAULTY_REGISTRY: { className: 'FaultyRegistry', scriptName: 'faulty-store' },
                  CRASHABLE_LIMITER: { className: 'CrashableLimiter', scriptName: 'faulty-store' },
                },
                bindings: {
                  UPSTREAM_URL: inject('upstreamUrl'),
                  ...meshKeys('gateway'),
                  // The example routes' dev issuer, played here by the ES256 test issuer.
                  MESH_DEV_JWKS: JSON.stringify({ keys: [inject('issuerKeys').ES256.publicJwk] }),
                },
                serviceBindings: {
                  // As a service sees the registry: its heartbeat entrypoint only.
                  MESH_HEARTBEAT: { name: 'meshwork-gateway', entrypoint: 'RegistryHeartbeat' },
                  ECHO: 'echo',
                  ECHO_V2: 'echo-v2',
                  BROKEN: 'broken',
                  FLAKY_A: 'flaky-a',
                  FLAKY_B: 'flaky-b',
                  FLAKY_C: 'flaky-c',
                  SERVICE_A: 'service-a',
                  SERVICE_B_V1: 'service-b',
                  SERVICE_B_V2: 'service-b-v2',
                  INTRUDER: 'service-c',
                  COMPROMISED: 'compromised',
                },
                workers: [
                  js('echo', './test/fixtures/echo-worker.js', { bindings: { NAME: 'echo' } }),
                  js('echo-v2', './test/fixtures/echo-worker.js', { bindings: { NAME: 'echo-v2' } }),
                  js('broken', './test/fixtures/broken-worker.js'),
                  js('flaky-a', './test/fixtures/flaky-worker.js', { bindings: { NAME: 'flaky-a' } }),
                  js('flaky-b', './test/fixtures/flaky-worker.js', { bindings: { NAME: 'flaky-b' } }),
                  js('flaky-c', './test/fixtures/flaky-worker.js', { bindings: { NAME: 'flaky-c' } }),
                  js('meshwork-gateway', bundles.gateway, {
                    modulesRoot: bundles.dir,
                    bindings: meshKeys('gateway'),
                    kvNamespaces: kv,
                    durableObjects: {
                      MESH_RATE_LIMITER: { className: 'RateLimiter', useSQLite: true },
                      MESH_REGISTRY: { className: 'MeshRegistry', useSQLite: true },
                      MESH_TELEMETRY: { className: 'MeshTelemetry', useSQLite: true },
                    },
                    // The registry probes services over the gateway's bindings.
                    serviceBindings: {
                      SERVICE_A: 'service-a',
                      SERVICE_B_V1: 'service-b',
                      SERVICE_B_V2: 'service-b-v2',
                    },
                  }),
                  js('faulty-store', bundles.faultyStore, {
                    modulesRoot: bundles.dir,
                    durableObjects: {
                      FAULTY_LIMITER: { className: 'RateLimiter', useSQLite: true },
                      FAULTY_REGISTRY: { className: 'FaultyRegistry', useSQLite: true },
                      CRASHABLE_LIMITER: { className: 'CrashableLimiter', useSQLite: true },
                    },
                  }),
                  js('service-a', bundles.serviceA, {
                    modulesRoot: bundles.dir,
                    kvNamespaces: kv,
                    bindings: meshKeys('service-a'),
                    serviceBindings: {
                      SERVICE_B_V1: 'service-b',
                      SERVICE_B_V2: 'service-b-v2',
                      ...heartbeat,
                      ...limits,
                    },
                  }),
                  // A compromised service: a genuine member key and exactly what services get.
                  js('compromised', bundles.compromised, {
                    modulesRoot: bundles.dir,
                    kvNamespaces: kv,
                    bindings: meshKeys('service-c'),
                    serviceBindings: { ...heartbeat, ...limits },
                  }),
                  serviceB('service-b', 'v1'),
                  serviceB('service-b-v2', 'v2'),
                  js('service-c', bundles.intruder, {
                    modulesRoot: bundles.dir,
                    bindings: meshKeys('service-c'),
                    serviceBindings: { SERVICE_B_V1: 'service-b' },
                  }),
                ],
              },
            };
          }),
        ],
        test: {
          name: 'workers',
          include: ['test/workers/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          // Files share the auxiliary workers' state (rate-limit buckets, KV): one file at a time,
          // so one file draining a shared bucket cannot fail another.
          fileParallelism: false,
        },
      },
      {
        // One local mesh at a time: two wrangler dev meshes on two cores starve each other.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
