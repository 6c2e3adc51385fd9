/**
 * `meshwork deploy`: every worker of the project through `wrangler deploy`, in an order that
 * works on a first deploy as well as on an upgrade.
 *
 * The workers bind each other both ways: the gateway binds each service (service bindings for
 * its backends) and each service binds the gateway (the heartbeat, rate-limit and telemetry
 * entrypoints). Cloudflare refuses a binding to a Worker that does not exist yet, so:
 *  - first deploy (--bootstrap): the gateway without its bindings to the services, then every
 *    service (the gateway exists now), then the gateway in full;
 *  - upgrade: every service, then the gateway (a service added since the last deploy then
 *    exists when the gateway starts binding it).
 * Before anything is uploaded: routes/ is compiled and every worker's bindings are checked; the
 * MESH_KV namespace id must be the same real id in every worker; each worker gets its mesh
 * secrets (its own signing key, every member's public key; the gateway its admin token) with
 * the deployment (`wrangler deploy --secrets-file`).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import { memberPair, type DevKeys, type KeyPair } from '../cli/keys.ts';
import { QUIET_WRANGLER_ENV } from '../dev/workers.ts';
import { BUILD_DONE_ENV, buildProject } from './build.ts';
import type { MeshWorker, Project } from './project.ts';
import { KV_PLACEHOLDER, workerName } from './scaffold.ts';

export interface DeployOptions {
  dryRun: boolean;
  /** First deploy: bootstrap the gateway without its service bindings. */
  bootstrap: boolean;
  /** Create the MESH_KV namespace and write its id into every worker config. */
  createKv: boolean;
  /** Write this MESH_KV id into every worker config. */
  kvId?: string;
  /** The production keys file (default .meshwork/production-keys.json); false: put no secrets. */
  secrets: string | false;
  log: (line: string) => void;
  warn: (line: string) => void;
}

export class DeployError extends Error {}

interface Step {
  worker: MeshWorker;
  /** The config wrangler deploys (a bootstrap copy for the first gateway step). */
  config: string;
  label: string;
}

export async function deployProject(project: Project, options: DeployOptions): Promise<number> {
  const { log, warn } = options;
  const paths = project.workers.map((w) => join(project.root, w.config));

  // 1. The routes, and every worker's config, checked before anything leaves the machine.
  const built = await buildProject(project, { workers: paths });
  for (const w of built.warnings) warn(`warning: ${w}`);
  if (!built.ok) {
    for (const e of built.errors) warn(e);
    warn(`meshwork deploy: ${built.errors.length} error(s); nothing was deployed`);
    return 1;
  }
  log(
    `meshwork deploy: config ${built.bundle!.version} built from ${relative(project.root, project.routesDir) || '.'}`,
  );

  // 2. One KV namespace for the whole mesh.
  if (options.createKv && !options.dryRun) options.kvId = createKvNamespace(project);
  if (options.kvId) writeKvId(project, options.kvId, log);
  const kvProblems = checkKv(project);
  if (kvProblems.length > 0) {
    for (const p of kvProblems) (options.dryRun ? warn : (l: string) => warn(`error: ${l}`))(p);
    if (!options.dryRun) {
      warn('meshwork deploy: nothing was deployed (`--create-kv` creates the namespace, `--kv-id <id>` uses one)');
      return 1;
    }
  }

  // 3. Secrets, per worker.
  const secrets = options.secrets === false ? undefined : await loadProductionKeys(project, options);

  // 4. The order (see the top of this file).
  const gateway = project.workers[0]!;
  const services = project.workers.slice(1);
  const steps: Step[] = [];
  let bootstrapConfig: string | undefined;
  if (options.bootstrap) {
    bootstrapConfig = await writeBootstrapConfig(project, gateway, services);
    steps.push({
      worker: gateway,
      config: bootstrapConfig,
      label: `${gateway.config} (bootstrap: no service bindings yet)`,
    });
  }
  for (const s of services) steps.push({ worker: s, config: s.config, label: s.config });
  steps.push({ worker: gateway, config: gateway.config, label: gateway.config });

  const wrangler = join(dirname(createRequire(import.meta.url).resolve('wrangler/package.json')), 'bin/wrangler.js');
  const outRoot = join(project.root, '.meshwork/deploy');
  const secretDir = join(project.root, '.meshwork/deploy-secrets');
  try {
    for (const [i, step] of steps.entries()) {
      log(
        `\n[${i + 1}/${steps.length}] ${options.dryRun ? 'bundling' : 'deploying'} ${step.worker.member}: ${step.label}`,
      );
      const args = [wrangler, 'deploy', '-c', step.config];
      if (options.dryRun)
        args.push('--dry-run', '--outdir', join(outRoot, step.worker.config.replace(/[^A-Za-z0-9.]+/g, '_')));
      if (secrets) {
        const values = secretsFor(step.worker.member, secrets);
        if (options.dryRun) log(`  secrets: ${Object.keys(values).join(', ')} (uploaded with a real deploy)`);
        else {
          mkdirSync(secretDir, { recursive: true, mode: 0o700 });
          const file = join(secretDir, `${i}.json`);
          writeFileSync(file, JSON.stringify(values), { mode: 0o600 });
          args.push('--secrets-file', file);
        }
      }
      const r = spawnSync(process.execPath, args, {
        cwd: project.root,
        encoding: 'utf8',
        env: { ...process.env, ...QUIET_WRANGLER_ENV, [BUILD_DONE_ENV]: built.bundle!.version },
      });
      const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
      log(indent(out.trim()));
      if (r.status !== 0) {
        warn(`meshwork deploy: wrangler failed for ${step.label}; the steps before it are deployed, none after`);
        if (/could not find|does not exist|not found/i.test(out) && !options.bootstrap)
          warn(
            '  first deploy of this mesh? Run `npx meshwork deploy --bootstrap` (the gateway goes first without its service bindings)',
          );
        if (/not logged in|authentication|CLOUDFLARE_API_TOKEN/i.test(out))
          warn('  log in with `npx wrangler login` or set CLOUDFLARE_API_TOKEN (and CLOUDFLARE_ACCOUNT_ID)');
        return 1;
      }
    }
  } finally {
    if (bootstrapConfig) rmSync(join(project.root, bootstrapConfig), { force: true });
    rmSync(secretDir, { recursive: true, force: true });
  }
  log(`\n${publicAddress(project, gateway)}`);
  log(
    options.dryRun ? 'meshwork deploy --dry-run: every worker bundles; nothing was uploaded' : 'meshwork deploy: done',
  );
  return 0;
}

function indent(text: string): string {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** The MESH_KV id in each worker config (undefined: no MESH_KV namespace bound). */
function kvIds(project: Project): Array<{ worker: MeshWorker; id: string | undefined; line: number }> {
  return project.workers.map((worker) => {
    const text = readFileSync(join(project.root, worker.config), 'utf8');
    const m = /binding\s*=\s*"MESH_KV"\s*\n\s*id\s*=\s*"([^"]*)"/.exec(text);
    const line = m ? text.slice(0, m.index).split('\n').length + 1 : 0;
    return { worker, id: m?.[1], line };
  });
}

export function checkKv(project: Project): string[] {
  const ids = kvIds(project);
  const problems: string[] = [];
  for (const { worker, id, line } of ids) {
    if (id === undefined)
      problems.push(
        `${worker.config}: no MESH_KV namespace ([[kv_namespaces]] binding = "MESH_KV" followed by id = "<id>"); every worker of the mesh binds the same one`,
      );
    else if (id === KV_PLACEHOLDER || !/^[0-9a-f]{32}$/.test(id))
      problems.push(`${worker.config}:${line}: MESH_KV id "${id}" is a placeholder, not a namespace id`);
  }
  const real = new Set(ids.map((i) => i.id).filter((id) => id && id !== KV_PLACEHOLDER));
  if (real.size > 1)
    problems.push(
      `the workers bind different MESH_KV namespaces (${[...real].join(', ')}): the registry's snapshots would not reach them all; use one id everywhere (--kv-id <id>)`,
    );
  return problems;
}

export function writeKvId(project: Project, id: string, log: (l: string) => void): void {
  if (!/^[0-9a-f]{32}$/.test(id))
    throw new DeployError(`--kv-id must be a KV namespace id (32 hex digits), got "${id}"`);
  for (const worker of project.workers) {
    const path = join(project.root, worker.config);
    const text = readFileSync(path, 'utf8');
    const next = text.replace(/(binding\s*=\s*"MESH_KV"\s*\n\s*id\s*=\s*")[^"]*(")/, `$1${id}$2`);
    if (next !== text) {
      writeFileSync(path, next);
      log(`  ${worker.config}: MESH_KV id = "${id}"`);
    }
  }
}

function createKvNamespace(project: Project): string {
  const wrangler = join(dirname(createRequire(import.meta.url).resolve('wrangler/package.json')), 'bin/wrangler.js');
  const gateway = project.workers[0]!.config;
  const r = spawnSync(process.execPath, [wrangler, 'kv', 'namespace', 'create', 'MESH_KV', '-c', gateway], {
    cwd: project.root,
    encoding: 'utf8',
    env: { ...process.env, ...QUIET_WRANGLER_ENV },
  });
  const out = `${r.stdout}${r.stderr}`;
  const id = /"?id"?\s*[:=]\s*"([0-9a-f]{32})"/.exec(out)?.[1];
  if (r.status !== 0 || !id) throw new DeployError(`could not create the MESH_KV namespace:\n${indent(out)}`);
  return id;
}

/**
 * The mesh's production keys: one signing key per member and the admin token, kept in a file
 * outside git (default .meshwork/production-keys.json) and created on the first deploy. Every
 * deploy of the mesh must use the same file (keep it in your secret store; --secrets <file>);
 * a member added since gets its key added to it.
 */
async function loadProductionKeys(project: Project, options: DeployOptions): Promise<DevKeys> {
  const path = join(project.root, options.secrets || '.meshwork/production-keys.json');
  const keys = (existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : { members: {} }) as DevKeys;
  let added = false;
  for (const m of new Set(project.workers.map((w) => w.member))) {
    if (!keys.members[m]) {
      keys.members[m] = await memberPair(m);
      added = true;
    }
  }
  if (!keys.adminToken) {
    keys.adminToken = randomBytes(24).toString('base64url');
    added = true;
  }
  if (!added) return keys;
  if (options.dryRun) {
    options.log(
      `meshwork deploy: would write new production keys to ${relative(project.root, path)} (not in a dry run)`,
    );
    return keys;
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify({ members: keys.members, adminToken: keys.adminToken }, null, 2)}\n`, {
    mode: 0o600,
  });
  options.warn(
    `meshwork deploy: wrote the mesh's production keys to ${relative(project.root, path)}. Keep the file in your secret store: every deploy of this mesh needs it (--secrets <file>); MESH_ADMIN_TOKEN is in it.`,
  );
  return keys;
}

function secretsFor(member: string, keys: DevKeys): Record<string, string> {
  const pair: KeyPair | undefined = keys.members[member];
  if (!pair) throw new DeployError(`no production key for ${member}`);
  const out: Record<string, string> = {
    MESH_SIGNING_KEY: JSON.stringify(pair.privateJwk),
    MESH_PUBLIC_KEYS: JSON.stringify({ keys: Object.values(keys.members).map((m) => m.publicJwk) }),
  };
  if (member === 'gateway' && keys.adminToken) out.MESH_ADMIN_TOKEN = keys.adminToken;
  return out;
}

/**
 * A copy of the gateway's config without its bindings to the mesh's own service workers, beside
 * the original (so its relative paths and .dev.vars still hold); removed after the deploy.
 */
export async function writeBootstrapConfig(
  project: Project,
  gateway: MeshWorker,
  services: MeshWorker[],
): Promise<string> {
  const { experimental_readRawConfig } = await import('wrangler');
  const names = new Set(services.map((s) => workerName(join(project.root, s.config))).filter(Boolean));
  const { rawConfig } = experimental_readRawConfig({ config: join(project.root, gateway.config) });
  const raw = rawConfig as Record<string, unknown> & { services?: Array<{ service?: string }> };
  const bootstrap = { ...raw, services: (raw.services ?? []).filter((b) => !(b.service && names.has(b.service))) };
  const rel = join(
    dirname(gateway.config),
    `.meshwork-bootstrap.${basename(gateway.config).replace(/\.(toml|jsonc?)$/, '')}.json`,
  );
  writeFileSync(join(project.root, rel), `${JSON.stringify(bootstrap, null, 2)}\n`);
  return rel;
}

function publicAddress(project: Project, gateway: MeshWorker): string {
  const text = readFileSync(join(project.root, gateway.config), 'utf8');
  const routes = /^\s*routes\s*=|^\s*route\s*=|^\[\[routes\]\]/m.test(text);
  const workersDev = !/^\s*workers_dev\s*=\s*false/m.test(text);
  const name = workerName(join(project.root, gateway.config));
  if (routes) return `the gateway answers on the routes or custom domains in ${gateway.config}`;
  if (workersDev)
    return `the gateway answers at https://${name}.<your-subdomain>.workers.dev (add routes = [...] in ${gateway.config} for your own domain)`;
  return `warning: the gateway has no public address (workers_dev = false and no routes in ${gateway.config})`;
}
