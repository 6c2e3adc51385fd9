/**
 * Bundles a worker with esbuild for the harnesses that drive workerd through the Miniflare API
 * directly (the benchmark, the workerd test pool's auxiliary workers) instead of wrangler.
 */
import { build } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * @param meshConfig replaces the routes/ bundled into the worker (`meshwork/config`, by default
 *   the project's .meshwork/mesh-config.json as every wrangler config aliases it),
 *   e.g. so a benchmark runs the example services with its own config.
 */
export async function bundleWorker(
  entry: string,
  outdir: string,
  define?: Record<string, string>,
  name?: string,
  meshConfig?: unknown,
): Promise<string> {
  const outfile = join(outdir, `${name ?? entry.replace(/[^A-Za-z0-9]+/g, '_')}.mjs`);
  await build({
    entryPoints: [resolve(ROOT, entry)],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*', 'node:*'],
    minify: false,
    logLevel: 'warning',
    ...(define ? { define } : {}),
    // As each worker's wrangler config does ([alias] "meshwork/config").
    ...(meshConfig ? {} : { alias: { 'meshwork/config': resolve(ROOT, '.meshwork/mesh-config.json') } }),
    ...(meshConfig
      ? {
          plugins: [
            {
              name: 'mesh-config',
              setup(b) {
                b.onResolve({ filter: /^meshwork\/config$/ }, (args) => ({
                  path: args.path,
                  namespace: 'mesh-config',
                }));
                b.onLoad({ filter: /.*/, namespace: 'mesh-config' }, () => ({
                  contents: JSON.stringify(meshConfig),
                  loader: 'json',
                }));
              },
            },
          ],
        }
      : {}),
  });
  return outfile;
}
