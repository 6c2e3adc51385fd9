/**
 * The gateway under load, served as in the benchmark (workerd on direct sockets, real Durable
 * Objects): waves of concurrent clients, each wave ending with its connections closed while
 * requests are in flight, as a load test's end or a fleet of clients going away does.
 *
 * Through wrangler dev's proxy the gateway never sees that: this is where it does. Concurrent
 * requests of one user share store calls (src/ratelimit/coalesce.ts); a design that resumed
 * one request's code from another's promise had every store call refused by the runtime from
 * the second wave on (and the gateway stalled). Nothing here depends on speed: it counts
 * answers that are not 200.
 */
import autocannon from 'autocannon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gateways } from '../../bench/configs.ts';
import { startBenchMesh, type BenchMesh } from '../../bench/mesh.ts';

let mesh: BenchMesh;

beforeAll(async () => {
  // Only the gateways with auth and a per-user limit (exact, lease) that fails closed (a store
  // call that fails is a 503, not a quiet 200).
  mesh = await startBenchMesh((jwks, collector) => {
    const all = gateways(jwks, collector);
    return { 'gw-full': all['gw-full']!, 'gw-full-lease': all['gw-full-lease']! };
  });
});

afterAll(async () => {
  await mesh?.close();
});

describe('load waves against the gateway (direct sockets)', () => {
  it.each([
    ['exact', 'gw-full'],
    ['lease', 'gw-full-lease'],
  ])(
    '%s mode: four waves of 32 clients, each cut off mid-flight, every request of every wave answered 200',
    async (_mode, gateway) => {
      const url = new URL('/service-b', await mesh.url(gateway)).href;
      const headers = { authorization: `Bearer ${await mesh.userToken('waves', ['read:b'])}` };
      for (let wave = 1; wave <= 4; wave++) {
        const result = await autocannon({ url, headers, connections: 32, duration: 2 });
        expect({ wave, errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx }).toEqual({
          wave,
          errors: 0,
          timeouts: 0,
          non2xx: 0,
        });
        expect(result.requests.total).toBeGreaterThan(100);
      }
    },
  );
});
