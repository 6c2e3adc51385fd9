/**
 * `meshwork build`: compiles the project's routes/ into .meshwork/mesh-config.json, the file
 * every worker bundles as `meshwork/config`. Each worker's wrangler [build] command runs it
 * (`npx meshwork build --worker wrangler.toml`), so a deploy ships exactly what routes/ holds and
 * an invalid routes/ fails the deploy before anything is uploaded. With --worker it also checks
 * that worker's wrangler config: the alias to the compiled routes, and the bindings it needs.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MeshBundle } from '../../config/schema.ts';
import { formatIssue } from '../../config/validate.ts';
import { missingGatewayBindings } from '../config/bindings.ts';
import { bundleRoutesDir } from '../config/load-dir.ts';
import type { Project } from './project.ts';
import { workerName } from './scaffold.ts';

/**
 * Set by `meshwork dev` and `meshwork deploy` for the wrangler processes they start: they have
 * built and checked once, so each worker's own build command (run by wrangler) has nothing to do.
 */
export const BUILD_DONE_ENV = 'MESHWORK_BUILD_DONE';

export interface BuildResult {
  ok: boolean;
  bundle?: MeshBundle;
  /** Problems that fail the build: invalid routes, a gateway binding missing, no alias. */
  errors: string[];
  /** Problems the worker runs with, but not fully (a service without MESH_KV, ...). */
  warnings: string[];
  /** Whether the compiled file changed (a watcher reloads only then). */
  changed: boolean;
}

export interface BuildOptions {
  /** Local development: URL backends on this machine are allowed. */
  dev?: boolean;
  /**
   * Workers whose configs to check: each a wrangler worker name (`name` in its config; what each
   * worker's [build] command passes, since wrangler runs it from the user's working directory,
   * not the config's) or a config path (absolute, or relative to the working directory).
   */
  workers?: string[];
}

/** The package's own root (a source checkout has ui/ and scripts/ there; a package does not). */
const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export async function buildProject(project: Project, options: BuildOptions = {}): Promise<BuildResult> {
  const errors: string[] = [];
  const warnings: string[] = [];
  // Errors name files relative to the working directory when the routes are below it.
  const shown = relative(process.cwd(), project.routesDir);
  const dir = shown && !shown.startsWith('..') && !isAbsolute(shown) ? shown : project.routesDir;
  const result = await bundleRoutesDir(dir, { dev: options.dev ?? false });
  if (!result.ok) {
    return { ok: false, errors: result.errors.map(formatIssue), warnings, changed: false };
  }
  for (const wanted of options.workers ?? []) {
    const worker =
      project.workers.find((w) => workerName(resolve(project.root, w.config)) === wanted) ??
      project.workers.find((w) => resolve(project.root, w.config) === resolve(wanted));
    if (!worker) {
      errors.push(
        `--worker ${wanted}: not a worker of this mesh (neither a worker name nor a config listed in ${project.file}); list it under workers: there, or run \`npx meshwork add service <name>\``,
      );
      continue;
    }
    const path = resolve(project.root, worker.config);
    errors.push(...(await aliasProblems(project, path)));
    if (worker.member === 'gateway') errors.push(...(await missingGatewayBindings(result.bundle.config, path)));
    else {
      const check = (await import('../config/bindings.ts')) as unknown as Record<string, unknown>;
      const serviceBindingProblems = check.serviceBindingProblems as
        ((c: MeshBundle['config'], s: string, p: string) => Promise<string[]>) | undefined;
      if (serviceBindingProblems)
        warnings.push(...(await serviceBindingProblems(result.bundle.config, worker.member, path)));
    }
  }
  if (errors.length > 0) return { ok: false, bundle: result.bundle, errors, warnings, changed: false };
  const changed = writeIfChanged(project.builtConfig, `${JSON.stringify(result.bundle)}\n`);
  await ensureUiAssets();
  return { ok: true, bundle: result.bundle, errors, warnings, changed };
}

/** Writes `text` to `path` unless it already holds it (watchers then do not reload for nothing). */
export function writeIfChanged(path: string, text: string): boolean {
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return false;
  mkdirSync(dirname(path), { recursive: true });
  // Write then rename: several builds may run at once (one per worker under wrangler dev).
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
  return true;
}

/** A worker config must map `meshwork/config` to the project's compiled routes. */
async function aliasProblems(project: Project, path: string): Promise<string[]> {
  const { unstable_readConfig } = await import('wrangler');
  const alias = (unstable_readConfig({ config: path }).alias ?? {}) as Record<string, string>;
  // Wrangler resolves a value not starting with "." as a package name.
  const rel = relative(dirname(path), project.builtConfig);
  const want = rel.startsWith('.') ? rel : `./${rel}`;
  const fix = `add to ${path}:\n  [alias]\n  "meshwork/config" = "${want}"`;
  const target = alias['meshwork/config'];
  if (!target) return [`${path}: the worker would be bundled without the mesh config; ${fix}`];
  if (resolve(dirname(path), target) !== project.builtConfig)
    return [`${path}: [alias] "meshwork/config" points at ${target}, not at this project's compiled routes; ${fix}`];
  return [];
}

/**
 * The dashboard's assets. A package ships them built (scripts/pack.ts); a source checkout of
 * meshwork builds them from its ui/ directory.
 */
async function ensureUiAssets(): Promise<void> {
  if (existsSync(resolve(PACKAGE_ROOT, 'ui'))) {
    // Loaded only here: it needs cytoscape, a development dependency.
    const { buildUi } = await import('./ui-assets.ts');
    buildUi();
  } else if (!existsSync(resolve(PACKAGE_ROOT, 'src/generated/ui-assets.ts'))) {
    throw new Error(`the meshwork package at ${PACKAGE_ROOT} lacks its dashboard assets; reinstall it`);
  }
}
