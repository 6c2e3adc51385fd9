/**
 * The project commands: `init`, `add service`, `build`, `dev`, `deploy`. They work on the mesh
 * project at or above the working directory (meshwork.yaml, src/node/project/project.ts).
 */
import { resolve } from 'node:path';
import { formatIssue } from '../../config/validate.ts';
import { DEFAULT_DEV_PORT, runDev } from '../dev/run.ts';
import { BUILD_DONE_ENV, buildProject } from '../project/build.ts';
import { DeployError, deployProject } from '../project/deploy.ts';
import { loadProject, ProjectError, type Project } from '../project/project.ts';
import { addService, initProject, ScaffoldError, type ScaffoldReport } from '../project/scaffold.ts';
import { CommandError, defineCommand, defineGroup, UsageError } from './command.ts';

/** The project, or the command's error naming file, line and field of each problem. */
function project(): Project {
  try {
    return loadProject();
  } catch (e) {
    if (e instanceof ProjectError) throw new CommandError(e.message, e.issues.map(formatIssue));
    throw e;
  }
}

function scaffolded<T>(work: () => Promise<T>): Promise<T> {
  return work().catch((e: unknown) => {
    if (e instanceof ScaffoldError) throw new CommandError(e.message);
    if (e instanceof ProjectError) throw new CommandError(e.message, e.issues.map(formatIssue));
    throw e;
  });
}

function printReport(report: ScaffoldReport): void {
  for (const f of report.created) console.log(`  created  ${f}`);
  for (const f of report.updated) console.log(`  updated  ${f}`);
  for (const f of report.kept) console.log(`  kept     ${f} (exists; left as it is)`);
}

function serviceList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export const init = defineCommand({
  name: 'init',
  summary: 'scaffold a mesh project: gateway, routes/, a first service, meshwork.yaml',
  usage: '[dir] [--service <name>] [--gateway-name <worker name>]',
  help: `Creates a mesh in dir (default: the current directory), empty or an existing project:
  meshwork.yaml            the workers of the mesh (meshwork dev and deploy read it)
  wrangler.toml            the gateway's wrangler config, src/gateway.ts its entry
  routes/mesh.yaml         issuers and a rate limit, commented; routes/<service>.yaml per service
  services/<name>/         the first service (default "hello"): wrangler.toml and src/index.ts
  package.json             "dev" and "deploy" scripts (added; existing scripts are kept)
  .gitignore               .meshwork/, .dev.vars, .wrangler/ (appended if missing)
  .vscode/settings.json    the routes schema for the editor (unless the file exists)
Existing files are never overwritten. Then: npm run dev (or npx meshwork dev).`,
  args: ['dir'],
  options: {
    service: { type: 'string', value: 'name', description: 'the first service (default: hello)' },
    'gateway-name': {
      type: 'string',
      value: 'worker name',
      description: "the gateway's worker name (default: meshwork-gateway)",
    },
  },
  async run({ values, positionals }) {
    const dir = resolve(positionals[0] ?? '.');
    const report = await scaffolded(() =>
      initProject(dir, {
        ...(values.service ? { service: values.service } : {}),
        ...(values['gateway-name'] ? { gateway: values['gateway-name'] } : {}),
      }),
    );
    console.log(`meshwork: a mesh in ${dir}`);
    printReport(report);
    console.log(`
next:
  npm run dev                                   # the whole mesh on http://127.0.0.1:${DEFAULT_DEV_PORT}
  npx meshwork add service <name> [--callers ${values.service ?? 'hello'}]   # one more service
  npx meshwork deploy --dry-run                 # every worker bundles (docs: node_modules/meshwork/docs/deploy.md)`);
    return 0;
  },
});

const addServiceCommand = defineCommand({
  name: 'service',
  summary: 'add a service: its worker, its routes file, and the bindings to it',
  usage: '<name> [--callers <a,b>] [--path </prefix>] [--dir <dir>]',
  help: `Adds service <name> to the mesh project:
  services/<name>/wrangler.toml, src/index.ts   the worker (withMesh), bound to the gateway
  routes/<name>.yaml                            services.<name> and a route for /<name> (token required)
  meshwork.yaml                                 the worker, so meshwork dev and deploy run it
  the gateway's wrangler.toml                   a service binding to it (<NAME>)
With --callers, the services named may call it (policy.allowCallers) and each gets a binding
to it, as mesh.fetch('<name>', path) needs.`,
  args: ['name'],
  options: {
    callers: { type: 'string', value: 'a,b', description: 'services that call this one (comma separated)' },
    path: { type: 'string', value: '/prefix', description: 'the route prefix at the gateway (default: /<name>)' },
    dir: { type: 'string', value: 'dir', description: "the worker's directory (default: services/<name>)" },
  },
  async run({ values, positionals }) {
    const name = positionals[0];
    if (!name) throw new UsageError('add service needs a name: meshwork add service <name>');
    const report = await scaffolded(() =>
      addService(process.cwd(), name, {
        callers: serviceList(values.callers),
        ...(values.path ? { path: values.path } : {}),
        ...(values.dir ? { dir: values.dir } : {}),
      }),
    );
    console.log(`meshwork: added service ${name}`);
    printReport(report);
    console.log(`\nmeshwork dev picks it up on its next start (Ctrl-C and npm run dev).`);
    return 0;
  },
});

export const add = defineGroup({
  name: 'add',
  summary: 'add to the mesh project (add service <name>)',
  help: 'Adds a part to the mesh project at or above the current directory.',
  subcommands: [addServiceCommand],
});

export const build = defineCommand({
  name: 'build',
  summary: "compile routes/ into .meshwork/mesh-config.json (each worker's [build] command)",
  usage: '[--worker <worker name | wrangler config>]...',
  help: `Validates the project's routes directory and writes .meshwork/mesh-config.json, which every worker
bundles (its wrangler config aliases "meshwork/config" to it). Each worker's [build] command runs
it, so wrangler deploy ships what routes/ holds and an invalid routes/ fails the deploy.

--worker <name> (its wrangler name, or its config's path) also checks that worker's config: the alias (an error), the gateway's
binding for every backend a route reaches (an error), a service's bindings for what the mesh
needs (warnings: MESH_KV, the heartbeat, rate-limit and telemetry entrypoints, the services it
calls). Under meshwork dev and meshwork deploy, which build once themselves, it does nothing.`,
  options: {
    worker: {
      type: 'string',
      multiple: true,
      value: 'name',
      description: "check this worker's config too (name or path)",
    },
    quiet: { type: 'boolean', short: 'q', description: 'print only warnings and errors' },
  },
  async run({ values }) {
    if (process.env[BUILD_DONE_ENV]) return 0;
    const p = project();
    const result = await buildProject(p, {
      dev: process.env.MESHWORK_DEV === '1',
      workers: values.worker ?? [],
    });
    for (const w of result.warnings) console.error(`warning: ${w}`);
    if (!result.ok) throw new CommandError(`${result.errors.length} error(s); nothing was built`, result.errors);
    if (!values.quiet) {
      const { services, routes } = result.bundle!.config;
      console.log(
        `meshwork: built config ${result.bundle!.version} (${Object.keys(services).length} services, ${routes.length} routes)`,
      );
    }
    return 0;
  },
});

export const dev = defineCommand({
  name: 'dev',
  summary: 'run the whole mesh locally (every worker meshwork.yaml lists) in workerd',
  usage: '[--port 8787] [--persist-to .wrangler/state]',
  help: `Runs the gateway and every service worker of the project through one wrangler dev, on
127.0.0.1:<port> (the gateway; the services are reached through it). On first run it creates
local dev keys (.meshwork/dev-keys.json) and writes each worker's .dev.vars (only meshwork's
MESH_* lines; your own lines there are kept). It builds routes/ once, watches it and rebuilds
on change (the workers reload); an invalid edit is reported and the last valid config keeps
serving. KV and Durable Object state (the registry, applied configs, rate-limit buckets) persist
under --persist-to across restarts: if a config applied with meshwork apply is in force, dev
says so on start, and meshwork rollback --to-bundled serves routes/ again.`,
  options: {
    port: {
      type: 'string',
      default: process.env.PORT ?? String(DEFAULT_DEV_PORT),
      value: 'port',
      description: `the gateway's port (default ${DEFAULT_DEV_PORT}, or PORT)`,
    },
    'persist-to': {
      type: 'string',
      default: '.wrangler/state',
      value: 'dir',
      description: 'where local KV and Durable Object state lives (default .wrangler/state)',
    },
  },
  async run({ values }) {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port <= 0 || port > 65535)
      throw new UsageError(`--port must be a TCP port, got "${values.port}"`);
    const p = project();
    return runDev(p, { port, persistTo: resolve(values['persist-to']) });
  },
});

export const deploy = defineCommand({
  name: 'deploy',
  summary: 'deploy every worker with wrangler, in an order that works the first time',
  usage: '[--dry-run] [--bootstrap] [--create-kv | --kv-id <id>] [--secrets <file> | --no-secrets]',
  help: `Builds and checks routes/ and every worker's config, then runs wrangler deploy for each worker:
every service, then the gateway. The first deploy of a mesh needs --bootstrap: the gateway goes
first without its bindings to the services (Cloudflare refuses a binding to a Worker that does
not exist yet), then the services, then the gateway in full.

Every worker binds the same MESH_KV namespace: --create-kv creates it and writes its id into
every worker's config, --kv-id writes one you have; a placeholder id is refused (a dry run warns).
Each worker gets its mesh secrets with the deploy (its signing key, every member's public key;
the gateway MESH_ADMIN_TOKEN) from --secrets <file> (default .meshwork/production-keys.json,
created on the first deploy: keep it in your secret store).

--dry-run bundles every worker into .meshwork/deploy/ and uploads nothing (no account needed).
See docs/deploy.md.`,
  options: {
    'dry-run': { type: 'boolean', description: 'bundle every worker, upload nothing' },
    bootstrap: { type: 'boolean', description: 'first deploy: the gateway first, without its service bindings' },
    'create-kv': {
      type: 'boolean',
      description: "create the MESH_KV namespace, write its id into every worker's config",
    },
    'kv-id': { type: 'string', value: 'id', description: "write this MESH_KV namespace id into every worker's config" },
    secrets: {
      type: 'string',
      value: 'file',
      description: 'the production keys (default .meshwork/production-keys.json)',
    },
    'no-secrets': { type: 'boolean', description: 'put no secrets (you manage them with wrangler secret put)' },
  },
  async run({ values }) {
    if (values['create-kv'] && values['kv-id']) throw new UsageError('--create-kv and --kv-id: give one');
    if (values.secrets && values['no-secrets']) throw new UsageError('--secrets and --no-secrets: give one');
    const p = project();
    try {
      return await deployProject(p, {
        dryRun: values['dry-run'] ?? false,
        bootstrap: values.bootstrap ?? false,
        createKv: values['create-kv'] ?? false,
        ...(values['kv-id'] ? { kvId: values['kv-id'] } : {}),
        secrets: values['no-secrets'] ? false : (values.secrets ?? ''),
        log: (l) => console.log(l),
        warn: (l) => console.error(l),
      });
    } catch (e) {
      if (e instanceof DeployError) throw new CommandError(e.message);
      throw e;
    }
  },
});
