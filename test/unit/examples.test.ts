/**
 * The shipped example services get exactly the bindings a service should: the bindings a
 * service holds are what a compromised service could misuse (docs/security.md).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { unstable_readConfig } from 'wrangler';
import { describe, expect, it } from 'vitest';

const configs = readdirSync('examples', { recursive: true, encoding: 'utf8' })
  .filter((f) => /(^|\/)wrangler[^/]*\.toml$/.test(f))
  .map((f) => join('examples', f));

describe('example service configs', () => {
  it('exist', () => {
    expect(configs.length).toBeGreaterThanOrEqual(3);
  });

  it.each(configs)('%s binds no Durable Object and reaches the gateway only through entrypoints', (path) => {
    const c = unstable_readConfig({ config: path });
    // Binding RateLimiter, MeshRegistry or MeshTelemetry directly would let the service spend any
    // bucket, call the registry's control-plane methods or write any workload's metrics.
    expect(c.durable_objects.bindings).toEqual([]);
    const services = (c.services ?? []) as Array<{ binding: string; service: string; entrypoint?: string }>;
    const toGateway = services.filter((s) => s.service === 'meshwork-gateway');
    expect(toGateway.map((s) => [s.binding, s.entrypoint]).sort()).toEqual([
      ['MESH_RATE_LIMITER', 'RateLimits'],
      ['MESH_REGISTRY', 'RegistryHeartbeat'],
      ['MESH_TELEMETRY', 'Telemetry'],
    ]);
    expect(c.workers_dev).toBe(false);
  });
});
