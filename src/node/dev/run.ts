/**
 * `meshwork dev`: the whole mesh of a project (every worker meshwork.yaml lists) in workerd
 * through one `wrangler dev`, on 127.0.0.1:<port>, with KV and Durable Object state under
 * --persist-to. This process owns the routes: it builds them once before wrangler starts (so
 * an error is printed once, not once per worker), watches the routes directory and rebuilds on
 * change.
 *
 * Wrangler runs each worker from a copy of its config without the [build] section, written
 * beside it (so relative paths and .dev.vars hold) and removed on exit: with a custom build,
 * wrangler runs it twice on start, announces a spurious "file changed, restarting build" per
 * worker, and reloads only on changes under watch_dir; without one it watches every file the
 * worker imports, the compiled routes included, and reloads on exactly those.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import { ensureDevKeys } from '../cli/keys.ts';
import { buildProject, type BuildResult } from '../project/build.ts';
import type { Project } from '../project/project.ts';
import { recordDevMesh } from './mesh-file.ts';
import { QUIET_WRANGLER_ENV } from './workers.ts';

export const DEFAULT_DEV_PORT = 8787;

export interface DevOptions {
  port: number;
  persistTo: string;
  /** Where progress goes (the terminal); tests pass their own. */
  log?: (line: string) => void;
}

export async function runDev(project: Project, options: DevOptions): Promise<number> {
  const log = options.log ?? ((line: string) => console.log(line));
  const warn = (line: string) => console.error(line);
  const routesName = relative(project.root, project.routesDir) || '.';
  const workerPaths = project.workers.map((w) => join(project.root, w.config));

  // Local keys (dev token issuer, one signing key per mesh member) on first run, in .meshwork/
  // and each worker's .dev.vars (the user's own lines there are kept); all git-ignored.
  const keys = await ensureDevKeys(project.root, project.workers);

  const first = await buildProject(project, { dev: true, workers: workerPaths });
  report(first, routesName, warn);
  if (!first.ok) {
    warn(`meshwork dev: fix ${routesName} and run it again (nothing was started)`);
    return 1;
  }

  const wranglerBin = join(dirname(createRequire(import.meta.url).resolve('wrangler/package.json')), 'bin/wrangler.js');
  const devConfigs = await writeDevConfigs(project);
  const removeDevConfigs = () => devConfigs.forEach((c) => rmSync(join(project.root, c), { force: true }));
  process.on('exit', removeDevConfigs);
  const args = [wranglerBin, 'dev', ...devConfigs.flatMap((c) => ['-c', c])];
  args.push('--ip', '127.0.0.1', '--port', String(options.port), '--persist-to', options.persistTo);
  args.push('--show-interactive-dev-session=false');
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: project.root,
    stdio: 'inherit',
    env: { ...process.env, ...QUIET_WRANGLER_ENV, MESHWORK_DEV: '1' },
  });
  const exited = new Promise<number>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))),
  );
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));

  const base = `http://127.0.0.1:${options.port}`;
  // The CLI sends the local admin token only to the mesh recorded here (while this process lives).
  const forget = recordDevMesh(project.root, { url: base, pid: process.pid });
  process.on('exit', forget);

  let ready = false;
  // Watching starts before the mesh answers: an edit made while it starts is not missed.
  const watcher: FSWatcher = watchRoutes(project, routesName, log, warn, (version) => {
    if (ready) void warnIfOverridden(base, keys.adminToken, version, warn);
  });
  const started = waitForHealth(base, child).then(async (up) => {
    if (!up) return;
    ready = true;
    log(banner(project, base, options.port, first.bundle!.config, first.bundle!.version, routesName));
    await warnIfOverridden(base, keys.adminToken, first.bundle!.version, warn);
  });
  const code = await exited;
  watcher.close();
  await started.catch(() => undefined);
  forget();
  removeDevConfigs();
  return code;
}

/** The name of a worker config's dev copy: services/a/wrangler.toml -> services/a/.meshwork-dev.wrangler.json. */
export function devConfigName(config: string): string {
  return join(dirname(config), `.meshwork-dev.${basename(config).replace(/\.(toml|jsonc?)$/, '')}.json`);
}

async function writeDevConfigs(project: Project): Promise<string[]> {
  const { experimental_readRawConfig } = await import('wrangler');
  return project.workers.map((w) => {
    const { rawConfig } = experimental_readRawConfig({ config: join(project.root, w.config) });
    const { build: _build, ...rest } = rawConfig as Record<string, unknown>;
    const name = devConfigName(w.config);
    writeFileSync(join(project.root, name), `${JSON.stringify(rest, null, 2)}\n`);
    return name;
  });
}

function report(result: BuildResult, routesName: string, warn: (line: string) => void): void {
  for (const w of result.warnings) warn(`warning: ${w}`);
  for (const e of result.errors) warn(e);
  if (!result.ok) warn(`meshwork dev: ${result.errors.length} error(s) in ${routesName}`);
}

async function waitForHealth(base: string, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const res = await fetch(`${base}/_mesh/health`, { signal: AbortSignal.timeout(5000) });
      // Degraded still means it is up; the banner is about where to send requests.
      if (res.status === 200 || res.status === 503) {
        await res.body?.cancel();
        return true;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return false;
}

/** Rebuilds on every change under the routes directory, debounced (editors write in bursts). */
function watchRoutes(
  project: Project,
  routesName: string,
  log: (line: string) => void,
  warn: (line: string) => void,
  rebuilt: (version: string) => void,
): FSWatcher {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let broken = false;
  const rebuild = () => {
    running = running.then(async () => {
      const result = await buildProject(project, { dev: true });
      if (!result.ok) {
        report(result, routesName, warn);
        warn(`meshwork dev: still serving the last valid config`);
        broken = true;
        return;
      }
      const fixed = broken;
      broken = false;
      if (!result.changed) {
        if (fixed) log(`meshwork dev: ${routesName} is valid again: config ${result.bundle!.version} (unchanged)`);
        return;
      }
      const { services, routes } = result.bundle!.config;
      log(
        `meshwork dev: ${routesName} changed: config ${result.bundle!.version} (${Object.keys(services).length} services, ${routes.length} routes); the workers reload with it`,
      );
      rebuilt(result.bundle!.version);
    });
  };
  // Not recursive: only files directly in the routes directory are read (and Node 20's recursive
  // watch on Linux loses a file that an editor replaces by rename).
  return watch(project.routesDir, (_event, name) => {
    if (name && !/\.ya?ml$/.test(name)) return;
    clearTimeout(timer);
    timer = setTimeout(rebuild, 150);
  });
}

/**
 * An applied config (meshwork apply) is kept in the registry's state across restarts and wins
 * over routes/, by design (it is how a running mesh is changed without a deploy). Say so, and
 * how to drop it, whenever that hides the routes/ the user is editing.
 */
async function warnIfOverridden(
  base: string,
  adminToken: string | undefined,
  bundled: string,
  warn: (line: string) => void,
): Promise<void> {
  if (!adminToken) return;
  try {
    const res = await fetch(`${base}/_mesh/admin/status`, {
      headers: { authorization: `Bearer ${adminToken}` },
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) return;
    const status = (await res.json()) as { configRevision?: number; configVersion?: string };
    if (status.configRevision && status.configRevision > 0 && status.configVersion !== bundled) {
      warn(
        `\nmeshwork dev: the mesh serves config ${status.configVersion} (revision ${status.configRevision}, applied with \`meshwork apply\`),\n` +
          `not routes/ (config ${bundled}): an applied config wins over routes/ until it is rolled back.\n` +
          `  npx meshwork rollback --to-bundled${base.endsWith(`:${DEFAULT_DEV_PORT}`) ? '' : ` --url ${base}`}    # serve routes/ again\n`,
      );
    }
  } catch {
    // The warning is a courtesy; the mesh runs either way.
  }
}

function banner(
  project: Project,
  base: string,
  port: number,
  config: { services: Record<string, unknown>; routes: Array<{ matches?: Array<{ path?: unknown }> }> },
  version: string,
  routesName: string,
): string {
  const url = port === DEFAULT_DEV_PORT ? '' : ` --url ${base}`;
  const width = Math.max(...project.workers.map((w) => w.member.length));
  const workers = project.workers.map((w) => `  ${w.member.padEnd(width)}  ${w.config}`).join('\n');
  const path = firstPath(config.routes) ?? '/';
  return `
meshwork dev: the mesh is running at ${base}
  routes: ${routesName}/ (config ${version}: ${Object.keys(config.services).length} services, ${config.routes.length} routes)
${workers}

  curl -s ${base}/_mesh/health
  TOKEN=$(npx meshwork token --sub alice --ttl 1h | tail -1)   # a token the dev gateway accepts
  curl -s -H "authorization: Bearer $TOKEN" ${base}${path}
  npx meshwork status${url}      # services, versions, health
  npx meshwork top${url}         # live traffic per edge
  npx meshwork diff${url} -f <dir>; npx meshwork apply${url} -f <dir>   # change the running config

Edit ${routesName}/*.yaml and the mesh rebuilds and reloads with it. Ctrl-C stops it.
`;
}

function firstPath(routes: Array<{ matches?: Array<{ path?: unknown }> }>): string | undefined {
  for (const r of routes) {
    for (const m of r.matches ?? []) {
      const p = m.path as { prefix?: string; exact?: string } | string | undefined;
      const value = typeof p === 'string' ? p : (p?.prefix ?? p?.exact);
      if (value && !value.includes(':') && !value.includes('*')) return value;
    }
  }
  return undefined;
}
