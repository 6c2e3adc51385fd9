import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

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
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], environment: 'node' },
      },
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            miniflare: {
              compatibilityDate: '2026-04-01',
              bindings: { UPSTREAM_URL: inject('upstreamUrl') },
              serviceBindings: { ECHO: 'echo', ECHO_V2: 'echo-v2', BROKEN: 'broken' },
              workers: [
                { name: 'echo', modules: true, scriptPath: './test/fixtures/echo-worker.js', compatibilityDate: '2026-04-01', bindings: { NAME: 'echo' } },
                { name: 'echo-v2', modules: true, scriptPath: './test/fixtures/echo-worker.js', compatibilityDate: '2026-04-01', bindings: { NAME: 'echo-v2' } },
                { name: 'broken', modules: true, scriptPath: './test/fixtures/broken-worker.js', compatibilityDate: '2026-04-01' },
              ],
            },
          })),
        ],
        test: { name: 'workers', include: ['test/workers/**/*.test.ts'], globalSetup: ['test/support/upstream-server.ts'] },
      },
      {
        test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], environment: 'node', testTimeout: 120_000, hookTimeout: 180_000 },
      },
    ],
  },
});
