/**
 * The build-time check of a service's wrangler config: every binding its withMesh wrapper needs,
 * each missing or wrong one reported once with the file, the binding and the TOML to add.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MeshConfig } from '../../../src/config/schema.ts';
import { validateSources } from '../../../src/config/validate.ts';
import { serviceBindingProblems } from '../../../src/node/config/bindings.ts';
import { readRoutesDir } from '../../../src/node/config/load-dir.ts';

process.env.WRANGLER_SEND_METRICS = 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false';

function configOf(yaml: string): MeshConfig {
  const r = validateSources([{ name: 'mesh.yaml', text: yaml }]);
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
  return r.config;
}

const repoConfig = (): MeshConfig => {
  const r = validateSources(readRoutesDir('routes'));
  if (!r.ok) throw new Error('routes/ is invalid');
  return r.config;
};

/** The gateway bindings of a complete service config (as in examples/), each by its own key. */
const KV = '[[kv_namespaces]]\nbinding = "MESH_KV"\nid = "00000000000000000000000000000000"\n';
const REGISTRY =
  '[[services]]\nbinding = "MESH_REGISTRY"\nservice = "meshwork-gateway"\nentrypoint = "RegistryHeartbeat"\n';
const LIMITS = '[[services]]\nbinding = "MESH_RATE_LIMITER"\nservice = "meshwork-gateway"\nentrypoint = "RateLimits"\n';
const TELEMETRY = '[[services]]\nbinding = "MESH_TELEMETRY"\nservice = "meshwork-gateway"\nentrypoint = "Telemetry"\n';
const binding = (name: string, worker: string) => `[[services]]\nbinding = "${name}"\nservice = "${worker}"\n`;

let dir: string;
let n = 0;
/** A real wrangler.toml in a temp dir: name, main, then the given tables. */
function wrangler(name: string, ...tables: string[]): string {
  const path = join(dir, `wrangler-${++n}.toml`);
  writeFileSync(
    path,
    [`name = "${name}"`, 'main = "src/index.ts"', 'compatibility_date = "2026-04-01"', '', ...tables].join('\n'),
  );
  return path;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshwork-bindings-'));
});

describe('serviceBindingProblems', () => {
  it.each([
    ['service-a', 'examples/service-a/wrangler.toml'],
    ['service-b', 'examples/service-b/wrangler.toml'],
    ['service-b', 'examples/service-b/wrangler.v2.toml'],
  ])('finds nothing missing in the shipped %s config (%s)', async (service, path) => {
    expect(await serviceBindingProblems(repoConfig(), service, path)).toEqual([]);
  });

  it('without MESH_KV: says the service silently ignores applied configs, and gives the TOML', async () => {
    const path = wrangler('service-b', REGISTRY, LIMITS, TELEMETRY);
    const problems = await serviceBindingProblems(repoConfig(), 'service-b', path);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(`${path}: no KV namespace MESH_KV`);
    expect(problems[0]).toContain('silently ignores configs applied with `meshwork apply`');
    expect(problems[0]).toContain('[[kv_namespaces]]\n    binding = "MESH_KV"\n    id = ');
  });

  it("without MESH_REGISTRY: names the gateway's RegistryHeartbeat entrypoint and the gateway worker", async () => {
    const path = wrangler('service-b', KV, LIMITS, TELEMETRY);
    const problems = await serviceBindingProblems(repoConfig(), 'service-b', path);
    expect(problems).toEqual([
      expect.stringContaining(
        `${path}: no service binding MESH_REGISTRY to the gateway's RegistryHeartbeat entrypoint`,
      ),
    ]);
    expect(problems[0]).toContain(
      '[[services]]\n    binding = "MESH_REGISTRY"\n    service = "meshwork-gateway"\n    entrypoint = "RegistryHeartbeat"',
    );
  });

  it('uses the gateway worker name it is given', async () => {
    const path = wrangler('service-b', KV);
    const problems = await serviceBindingProblems(repoConfig(), 'service-b', path, 'edge-gw');
    expect(problems.join('\n')).toContain('service = "edge-gw"\n    entrypoint = "RegistryHeartbeat"');
    // The example, bound to meshwork-gateway, points at the wrong worker for a gateway named otherwise.
    const wrong = await serviceBindingProblems(
      repoConfig(),
      'service-b',
      'examples/service-b/wrangler.toml',
      'edge-gw',
    );
    expect(wrong).toHaveLength(3);
    expect(wrong[0]).toContain(
      '[[services]] MESH_REGISTRY points at worker "meshwork-gateway", not the gateway "edge-gw"',
    );
  });

  describe('the rate limiter binding', () => {
    it('is needed by a service whose own rate limits apply to its callers (service-b)', async () => {
      const path = wrangler('service-b', KV, REGISTRY, TELEMETRY);
      const problems = await serviceBindingProblems(repoConfig(), 'service-b', path);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(
        `${path}: no service binding MESH_RATE_LIMITER to the gateway's RateLimits entrypoint`,
      );
      expect(problems[0]).toContain('services.service-b.policy.rateLimits');
      expect(problems[0]).toContain('entrypoint = "RateLimits"');
    });

    it('is not needed by a service without rate limits of its own (service-a)', async () => {
      const path = wrangler(
        'service-a',
        KV,
        REGISTRY,
        TELEMETRY,
        binding('SERVICE_B_V1', 'b1'),
        binding('SERVICE_B_V2', 'b2'),
      );
      expect(await serviceBindingProblems(repoConfig(), 'service-a', path)).toEqual([]);
    });

    const limited = (allowCallers: string, callers: string) => `
rateLimits:
  p: { limit: 5, period: 1s, key: [caller]${callers} }
services:
  a: { backends: [{ binding: A }] }
  b:
    backends: [{ binding: B }]
    policy: { rateLimits: [p]${allowCallers} }
`;

    it('is not needed when every policy counts only callers that allowCallers keeps out', async () => {
      const path = wrangler('b', KV, REGISTRY, TELEMETRY);
      const config = configOf(limited(', allowCallers: [gateway]', ', callers: [a]'));
      expect(await serviceBindingProblems(config, 'b', path)).toEqual([]);
    });

    it('is needed when a policy counts callers that may call', async () => {
      const path = wrangler('b', KV, REGISTRY, TELEMETRY);
      for (const [allow, callers] of [
        [', allowCallers: [gateway, a]', ', callers: [a]'],
        ['', ', callers: [a]'],
        [', allowCallers: [gateway]', ''],
      ] as const) {
        const problems = await serviceBindingProblems(configOf(limited(allow, callers)), 'b', path);
        expect(problems, `${allow} ${callers}`).toEqual([
          expect.stringContaining('no service binding MESH_RATE_LIMITER'),
        ]);
      }
    });

    it('goes by rateLimitStore.binding', async () => {
      const config = configOf(`${limited('', '')}rateLimitStore: { binding: LIMITER }\n`);
      const path = wrangler('b', KV, REGISTRY, TELEMETRY, LIMITS);
      const problems = await serviceBindingProblems(config, 'b', path);
      expect(problems).toEqual([
        expect.stringContaining(
          "no service binding LIMITER to the gateway's RateLimits entrypoint: b's rate limits (services.b.policy.rateLimits) cannot be checked",
        ),
      ]);
      expect(problems[0]).toContain('(It is bound as MESH_RATE_LIMITER; the wrapper looks for LIMITER.)');
    });
  });

  describe('the telemetry binding', () => {
    const yaml = (enabled: boolean) => `
services:
  a: { backends: [{ binding: A }] }
observability: { metrics: { enabled: ${enabled} } }
`;
    it('is needed while metrics are enabled (the default)', async () => {
      const path = wrangler('a', KV, REGISTRY);
      const problems = await serviceBindingProblems(configOf(yaml(true)), 'a', path);
      expect(problems).toEqual([
        expect.stringContaining(`${path}: no service binding MESH_TELEMETRY to the gateway's Telemetry entrypoint`),
      ]);
      expect(problems[0]).toContain('dropped from /_mesh/metrics');
      expect(problems[0]).toContain('entrypoint = "Telemetry"');
    });

    it('is not needed with metrics off', async () => {
      const path = wrangler('a', KV, REGISTRY);
      expect(await serviceBindingProblems(configOf(yaml(false)), 'a', path)).toEqual([]);
    });
  });

  describe('bindings of the services it calls', () => {
    it('needs every binding backend of a service whose allowCallers lists it (service-a -> service-b)', async () => {
      const path = wrangler('service-a', KV, REGISTRY, LIMITS, TELEMETRY, binding('SERVICE_B_V1', 'service-b'));
      const problems = await serviceBindingProblems(repoConfig(), 'service-a', path);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(
        `${path}: no service binding SERVICE_B_V2 for a backend of "service-b" (version v2)`,
      );
      expect(problems[0]).toContain('services.service-b.policy.allowCallers lists service-a');
      expect(problems[0]).toContain('[[services]]\n    binding = "SERVICE_B_V2"\n    service = ');
    });

    const open = `
services:
  caller: { backends: [{ binding: CALLER }] }
  open:
    backends:
      - { binding: OPEN_V1, version: v1 }
      - { binding: OPEN_V2, version: v2 }
      - { url: "https://open.example.com", version: v3 }
  closed:
    backends: [{ binding: CLOSED }]
    policy: { allowCallers: [gateway] }
`;
    it('needs nothing of a service without allowCallers that it binds none of (least privilege)', async () => {
      const path = wrangler('caller', KV, REGISTRY, TELEMETRY);
      expect(await serviceBindingProblems(configOf(open), 'caller', path)).toEqual([]);
    });

    it('needs the rest once it binds one backend of such a service; never URL backends or services it may not call', async () => {
      const path = wrangler('caller', KV, REGISTRY, TELEMETRY, binding('OPEN_V1', 'open'));
      const problems = await serviceBindingProblems(configOf(open), 'caller', path);
      expect(problems).toEqual([
        expect.stringContaining(
          `${path}: no service binding OPEN_V2 for a backend of "open" (version v2): caller binds other backends of open`,
        ),
      ]);
    });
  });

  describe('wrong bindings to the gateway', () => {
    it('flags an entrypoint binding that names the wrong entrypoint, or none', async () => {
      const wrongRegistry =
        '[[services]]\nbinding = "MESH_REGISTRY"\nservice = "meshwork-gateway"\nentrypoint = "MeshRegistry"\n';
      const noEntrypoint = '[[services]]\nbinding = "MESH_TELEMETRY"\nservice = "meshwork-gateway"\n';
      const path = wrangler('service-b', KV, wrongRegistry, LIMITS, noEntrypoint);
      const problems = await serviceBindingProblems(repoConfig(), 'service-b', path);
      expect(problems).toHaveLength(2);
      expect(problems[0]).toContain(
        `${path}: [[services]] MESH_REGISTRY names entrypoint "MeshRegistry", not the gateway's "RegistryHeartbeat"; it should be:\n    [[services]]\n    binding = "MESH_REGISTRY"\n    service = "meshwork-gateway"\n    entrypoint = "RegistryHeartbeat"`,
      );
      expect(problems[1]).toContain(
        `${path}: [[services]] MESH_TELEMETRY names no entrypoint (the gateway's HTTP handler), not the gateway's "Telemetry"`,
      );
    });

    it('flags an entrypoint binding pointed at another worker', async () => {
      const elsewhere =
        '[[services]]\nbinding = "MESH_RATE_LIMITER"\nservice = "meshwork-gatewy"\nentrypoint = "RateLimits"\n';
      const path = wrangler('service-b', KV, REGISTRY, elsewhere, TELEMETRY);
      expect(await serviceBindingProblems(repoConfig(), 'service-b', path)).toEqual([
        expect.stringContaining(
          `${path}: [[services]] MESH_RATE_LIMITER points at worker "meshwork-gatewy", not the gateway "meshwork-gateway"`,
        ),
      ]);
    });

    it('flags another binding to the gateway naming an entrypoint it does not export', async () => {
      const other = '[[services]]\nbinding = "LIMITS"\nservice = "meshwork-gateway"\nentrypoint = "RateLimit"\n';
      const path = wrangler('service-b', KV, REGISTRY, LIMITS, TELEMETRY, other);
      expect(await serviceBindingProblems(repoConfig(), 'service-b', path)).toEqual([
        `${path}: [[services]] LIMITS names entrypoint "RateLimit", which the gateway "meshwork-gateway" does not export (it exports RegistryHeartbeat, RateLimits, Telemetry for services)`,
      ]);
    });

    it("flags a binding to the gateway's Durable Objects themselves", async () => {
      const object =
        '[[durable_objects.bindings]]\nname = "LIMITER_OBJECTS"\nclass_name = "RateLimiter"\nscript_name = "meshwork-gateway"\n';
      const path = wrangler('service-b', KV, REGISTRY, LIMITS, TELEMETRY, object);
      expect(await serviceBindingProblems(repoConfig(), 'service-b', path)).toEqual([
        expect.stringContaining(
          `${path}: [[durable_objects.bindings]] LIMITER_OBJECTS binds the gateway's RateLimiter Durable Object: a service must never hold it`,
        ),
      ]);
    });
  });

  it('reports every problem of an empty config at once', async () => {
    const path = wrangler('service-a');
    const problems = await serviceBindingProblems(repoConfig(), 'service-a', path);
    expect(problems.map((p) => /^\S+: no (KV namespace|service binding) (\w+)/.exec(p)?.[2])).toEqual([
      'MESH_KV',
      'MESH_REGISTRY',
      'MESH_TELEMETRY',
      'SERVICE_B_V1',
      'SERVICE_B_V2',
    ]);
  });

  it('refuses a service the config does not define', async () => {
    expect(await serviceBindingProblems(repoConfig(), 'service-c', 'examples/service-a/wrangler.toml')).toEqual([
      'examples/service-a/wrangler.toml: service "service-c" is not defined in the mesh config (services.service-c in routes/)',
    ]);
  });
});
