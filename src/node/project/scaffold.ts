/**
 * `meshwork init` and `meshwork add service`: a mesh project from the package's templates/.
 * Nothing the user already has is overwritten: an existing file is left alone and reported
 * (package.json, .gitignore and meshwork.yaml are edited in place, keeping what is there).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isSeq, parseDocument } from 'yaml';
import { BUILT_CONFIG, PROJECT_FILE, loadProject, type Project } from './project.ts';

const TEMPLATES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../templates');

/** The KV id placeholder `meshwork deploy` refuses (and --create-kv replaces). */
export const KV_PLACEHOLDER = '00000000000000000000000000000000';

const SERVICE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export class ScaffoldError extends Error {}

export interface ScaffoldReport {
  created: string[];
  updated: string[];
  kept: string[];
}

export interface InitOptions {
  /** The first service (default "hello"). */
  service?: string;
  /** The gateway's worker name (default "meshwork-gateway"). */
  gateway?: string;
}

export function checkServiceName(name: string): void {
  if (!SERVICE_NAME.test(name) || name.length > 63)
    throw new ScaffoldError(
      `"${name}" is not a service name: lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63)`,
    );
  if (name === 'gateway') throw new ScaffoldError('"gateway" is the gateway\'s own name; pick another service name');
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (m, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`template placeholder ${m} has no value`);
    return v;
  });
}

function template(path: string): string {
  return readFileSync(join(TEMPLATES, path), 'utf8');
}

function posix(p: string): string {
  return p.split('\\').join('/');
}

/** The editor schema as seen from `file` (a path that works wherever the project lives). */
function schemaFrom(root: string, file: string): string {
  const schema = existsSync(join(root, 'node_modules/meshwork/schema/routes.schema.json'))
    ? join(root, 'node_modules/meshwork/schema/routes.schema.json')
    : resolve(TEMPLATES, '../schema/routes.schema.json');
  return posix(relative(dirname(file), schema));
}

class Writer {
  readonly report: ScaffoldReport = { created: [], updated: [], kept: [] };
  constructor(readonly root: string) {}
  /** Creates `rel` unless it exists (then it is kept as the user has it). */
  create(rel: string, text: string): boolean {
    const path = join(this.root, rel);
    if (existsSync(path)) {
      this.report.kept.push(rel);
      return false;
    }
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    this.report.created.push(rel);
    return true;
  }
  update(rel: string, before: string | undefined, after: string): void {
    if (before === after) return;
    const path = join(this.root, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, after);
    (before === undefined ? this.report.created : this.report.updated).push(rel);
  }
}

function readIf(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

const GITIGNORE = ['node_modules/', '.wrangler/', '.meshwork/', '.dev.vars', '.dev.vars.*', '.meshwork-*.json'];

export async function initProject(dir: string, options: InitOptions = {}): Promise<ScaffoldReport> {
  const root = resolve(dir);
  const service = options.service ?? 'hello';
  const gateway = options.gateway ?? 'meshwork-gateway';
  checkServiceName(service);
  if (!SERVICE_NAME.test(gateway)) throw new ScaffoldError(`--gateway-name "${gateway}" is not a worker name`);
  if (existsSync(join(root, PROJECT_FILE)))
    throw new ScaffoldError(
      `${join(root, PROJECT_FILE)} exists: this is a mesh project already (\`npx meshwork add service <name>\` adds a service)`,
    );
  const w = new Writer(root);
  w.create(PROJECT_FILE, template('project/meshwork.yaml'));
  if (!w.create('wrangler.toml', fill(template('project/wrangler.toml'), { gateway, kvId: KV_PLACEHOLDER }))) {
    throw new ScaffoldError(
      `${join(root, 'wrangler.toml')} exists; init writes the gateway's wrangler.toml there. Run init in an empty directory (or move that file)`,
    );
  }
  w.create('src/gateway.ts', template('project/src/gateway.ts'));
  w.create(
    'routes/mesh.yaml',
    fill(template('project/routes/mesh.yaml'), { schema: schemaFrom(root, join(root, 'routes/mesh.yaml')) }),
  );

  // package.json: scripts that run the mesh, and meshwork itself as a dependency.
  const pkgPath = join(root, 'package.json');
  const pkgText = readIf(pkgPath);
  const pkg = (
    pkgText
      ? JSON.parse(pkgText)
      : {
          name: basename(root)
            .toLowerCase()
            .replace(/[^a-z0-9-]+/g, '-'),
          private: true,
        }
  ) as {
    type?: string;
    scripts?: Record<string, string>;
  };
  pkg.type ??= 'module';
  pkg.scripts ??= {};
  pkg.scripts.dev ??= 'meshwork dev';
  pkg.scripts.deploy ??= 'meshwork deploy';
  w.update('package.json', pkgText, `${JSON.stringify(pkg, null, 2)}\n`);

  const ignorePath = join(root, '.gitignore');
  const ignoreText = readIf(ignorePath);
  const have = new Set((ignoreText ?? '').split('\n').map((l) => l.trim()));
  const missing = GITIGNORE.filter((l) => !have.has(l));
  if (missing.length > 0) {
    const base =
      ignoreText === undefined ? '' : ignoreText.endsWith('\n') || ignoreText === '' ? ignoreText : `${ignoreText}\n`;
    w.update(
      '.gitignore',
      ignoreText,
      `${base}# meshwork: dev keys, build output, local state\n${missing.join('\n')}\n`,
    );
  }

  // Editors: the routes schema for every routes file, wherever the project lives.
  const vscode = join(root, '.vscode/settings.json');
  if (!existsSync(vscode)) {
    w.create(
      '.vscode/settings.json',
      `${JSON.stringify({ 'yaml.schemas': { './node_modules/meshwork/schema/routes.schema.json': ['routes/*.yaml', 'routes/*.yml'] } }, null, 2)}\n`,
    );
  } else w.report.kept.push('.vscode/settings.json');

  const added = await addService(root, service, { callers: [] });
  for (const k of ['created', 'updated', 'kept'] as const)
    w.report[k].push(...added[k].filter((f) => !w.report[k].includes(f)));
  w.report.updated = w.report.updated.filter((f) => !w.report.created.includes(f));
  return w.report;
}

export interface AddServiceOptions {
  /** Services that will call this one with mesh.fetch: allowed by its policy, and given a binding to it. */
  callers?: string[];
  /** Directory for the service, relative to the project root (default services/<name>). */
  dir?: string;
  /** The route prefix at the gateway (default /<name>). */
  path?: string;
}

/** The binding name for a service's worker: hello-world -> HELLO_WORLD. */
export function bindingFor(service: string): string {
  return service.toUpperCase().replace(/-/g, '_');
}

export async function addService(from: string, name: string, options: AddServiceOptions = {}): Promise<ScaffoldReport> {
  checkServiceName(name);
  const project = loadProject(from);
  const { root } = project;
  const w = new Writer(root);
  const dir = posix(options.dir ?? `services/${name}`);
  const path = options.path ?? `/${name}`;
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(path))
    throw new ScaffoldError(`--path must be a URL path like /${name}, got "${path}"`);
  const callers = options.callers ?? [];
  for (const c of callers) {
    if (!project.workers.some((wk) => wk.member === c))
      throw new ScaffoldError(
        `--callers: "${c}" is not a service of this mesh (${PROJECT_FILE} lists ${servicesOf(project) || 'none'})`,
      );
  }
  if (project.workers.some((wk) => wk.member === name))
    throw new ScaffoldError(`service "${name}" is already in ${PROJECT_FILE}`);
  const routesFile = join(relative(root, project.routesDir) || '.', `${name}.yaml`);
  if (existsSync(join(root, routesFile)))
    throw new ScaffoldError(`${routesFile} exists already; remove it or pick another name`);
  if (existsSync(join(root, dir, 'wrangler.toml'))) throw new ScaffoldError(`${dir}/wrangler.toml exists already`);

  const gatewayConfig = join(root, project.workers[0]!.config);
  const gateway = workerName(gatewayConfig) ?? 'meshwork-gateway';
  const kvId = kvIdOf(gatewayConfig) ?? KV_PLACEHOLDER;
  const binding = bindingFor(name);
  const config = `${dir}/wrangler.toml`;
  w.create(
    config,
    fill(template('service/wrangler.toml'), {
      name,
      gateway,
      kvId,
      alias: posix(relative(join(root, dir), join(root, BUILT_CONFIG))),
    }),
  );
  w.create(`${dir}/src/index.ts`, fill(template('service/src/index.ts'), { name, path }));
  w.create(
    routesFile,
    fill(template('service/routes.yaml'), {
      name,
      binding,
      path,
      allowCallers: ['gateway', ...callers].join(', '),
      schema: schemaFrom(root, join(root, routesFile)),
    }),
  );

  // The gateway, and each caller, get a service binding to the new worker.
  appendBinding(w, root, project.workers[0]!.config, binding, name);
  for (const c of callers) {
    for (const wk of project.workers.filter((x) => x.member === c)) appendBinding(w, root, wk.config, binding, name);
  }

  // meshwork.yaml: one more worker, comments kept.
  const projectText = readFileSync(project.file, 'utf8');
  const doc = parseDocument(projectText);
  const workers = doc.get('workers');
  const entry = doc.createNode({ service: name, config });
  if (isSeq(workers)) {
    workers.flow = false;
    workers.items.push(entry);
  } else doc.set('workers', doc.createNode([{ service: name, config }]));
  w.update(PROJECT_FILE, projectText, doc.toString());
  return w.report;
}

function servicesOf(project: Project): string {
  return [...new Set(project.workers.filter((w) => w.member !== 'gateway').map((w) => w.member))].join(', ');
}

function appendBinding(w: Writer, root: string, config: string, binding: string, service: string): void {
  const path = join(root, config);
  const text = readFileSync(path, 'utf8');
  // Already there (a re-run, or the user added it): left alone.
  if (new RegExp(`^\\s*binding\\s*=\\s*"${binding}"`, 'm').test(text)) return;
  const block = `\n[[services]]\nbinding = "${binding}"\nservice = "${service}"\n`;
  w.update(config, text, `${text.replace(/\n*$/, '\n')}${block}`);
}

/** The top-level `name` of a wrangler.toml (the TOML text: no need to load wrangler here). */
export function workerName(configPath: string): string | undefined {
  const text = readIf(configPath);
  return text ? /^name\s*=\s*"([^"]+)"/m.exec(text)?.[1] : undefined;
}

function kvIdOf(configPath: string): string | undefined {
  const text = readIf(configPath);
  return text ? /binding\s*=\s*"MESH_KV"\s*\nid\s*=\s*"([^"]+)"/m.exec(text)?.[1] : undefined;
}
