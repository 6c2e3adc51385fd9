/**
 * The local mesh driven through the Miniflare API instead of `wrangler dev`: the same wrangler
 * configs (bindings, vars, compatibility settings via wrangler's own reader), each worker
 * bundled with esbuild. Used where the harness needs direct control: benchmarks serve the
 * measured worker on its own socket, skipping the entry worker and wrangler's proxy.
 */
import { build } from 'esbuild';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Log, LogLevel, Miniflare, type WorkerOptions } from 'miniflare';
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from 'wrangler';
import { MESH_WORKER_CONFIGS } from './workers.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface LocalMeshOptions {
  /** Worker configs to load (default: the example mesh). */
  configs?: readonly string[];
  /** Workers (by name) to serve on their own 127.0.0.1 socket, e.g. for benchmarks. */
  directSockets?: readonly string[];
  /** Extra workers (already built options), e.g. benchmark-only baselines. */
  extraWorkers?: WorkerOptions[];
  /** Per-worker overrides merged over the options read from wrangler config. */
  overrides?: Record<string, Partial<WorkerOptions>>;
  /** State directory; default is a fresh temporary one. */
  persistTo?: string;
  logLevel?: LogLevel;
}

/**
 * @param meshConfig replaces the routes/ bundled into the worker (src/generated/mesh-config.json),
 *   e.g. so a benchmark runs the example services with its own config.
 */
export async function bundleWorker(entry: string, outdir: string, define?: Record<string, string>, name?: string, meshConfig?: unknown): Promise<string> {
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
    ...(meshConfig
      ? {
          plugins: [
            {
              name: 'mesh-config',
              setup(b) {
                b.onResolve({ filter: /(^|\/)mesh-config\.json$/ }, (args) => ({ path: args.path, namespace: 'mesh-config' }));
                b.onLoad({ filter: /.*/, namespace: 'mesh-config' }, () => ({ contents: JSON.stringify(meshConfig), loader: 'json' }));
              },
            },
          ],
        }
      : {}),
  });
  return outfile;
}

export async function workerOptionsFrom(config: string, outdir: string): Promise<WorkerOptions> {
  const parsed = unstable_readConfig({ config: resolve(ROOT, config) });
  const { workerOptions, main } = unstable_getMiniflareWorkerOptions(parsed);
  if (!main) throw new Error(`${config} has no main entry`);
  const scriptPath = await bundleWorker(main, outdir);
  return { ...workerOptions, name: parsed.name, modules: true, modulesRoot: outdir, scriptPath } as WorkerOptions;
}

export async function startLocalMesh(options: LocalMeshOptions = {}): Promise<Miniflare> {
  const outdir = mkdtempSync(join(tmpdir(), 'meshwork-build-'));
  const workers: WorkerOptions[] = [];
  for (const config of options.configs ?? MESH_WORKER_CONFIGS) {
    const w = await workerOptionsFrom(config, outdir);
    workers.push({ ...w, ...(options.overrides?.[w.name ?? ''] ?? {}) } as WorkerOptions);
  }
  workers.push(...(options.extraWorkers ?? []));
  for (const w of workers) {
    if (w.name && options.directSockets?.includes(w.name)) {
      w.unsafeDirectSockets = [{ host: '127.0.0.1', port: 0 }];
    }
  }
  const persist = options.persistTo ?? mkdtempSync(join(tmpdir(), 'meshwork-state-'));
  const mf = new Miniflare({
    workers: workers as [WorkerOptions, ...WorkerOptions[]],
    host: '127.0.0.1',
    port: 0,
    cf: false,
    log: new Log(options.logLevel ?? LogLevel.WARN),
    defaultPersistRoot: persist,
  });
  await mf.ready;
  return mf;
}
