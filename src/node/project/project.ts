/**
 * The mesh project file, `meshwork.yaml`: which workers make up this mesh, so `meshwork dev`,
 * `build` and `deploy` need no code edits when a service is added. The project root is the
 * nearest directory at or above the working directory that holds one (as git finds `.git`);
 * everything the CLI writes (`.meshwork/`, `.dev.vars`) goes under that root, never under the
 * CLI's own install location.
 *
 *   # meshwork.yaml
 *   routes: routes                 # the routes directory (default: routes)
 *   gateway: wrangler.toml         # the gateway's wrangler config (default: wrangler.toml)
 *   workers:                       # one entry per service worker (a service may have several)
 *     - service: hello             # its name in routes/ (services.<name>)
 *       config: services/hello/wrangler.toml
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import type { ConfigIssue } from '../../config/validate.ts';

export const PROJECT_FILE = 'meshwork.yaml';

/** Where `meshwork build` writes the compiled routes, relative to the project root. */
export const BUILT_CONFIG = '.meshwork/mesh-config.json';

const SERVICE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const ProjectSpec = z
  .object({
    routes: z.string().min(1).default('routes'),
    gateway: z.string().min(1).default('wrangler.toml'),
    workers: z
      .array(
        z
          .object({
            service: z.string().max(63).regex(SERVICE_NAME, 'must be a service name (a DNS label, as in routes/)'),
            config: z.string().min(1),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();

/** One worker of the mesh and the mesh member it is ("gateway" or a service name). */
export interface MeshWorker {
  /** Path of its wrangler config, relative to the project root. */
  config: string;
  member: string;
}

export interface Project {
  /** Absolute path of the directory holding meshwork.yaml. */
  root: string;
  /** Absolute path of meshwork.yaml. */
  file: string;
  /** Absolute path of the routes directory. */
  routesDir: string;
  /** Absolute path of the compiled routes every worker bundles (`meshwork/config`). */
  builtConfig: string;
  /** Every worker, the gateway first (`meshwork dev` gives it the port). */
  workers: MeshWorker[];
}

export class ProjectError extends Error {
  constructor(
    message: string,
    readonly issues: ConfigIssue[] = [],
  ) {
    super(message);
  }
}

/** The nearest directory at or above `from` that holds meshwork.yaml. */
export function findProjectRoot(from = process.cwd()): string | undefined {
  let dir = resolve(from);
  for (;;) {
    if (existsSync(join(dir, PROJECT_FILE))) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/**
 * The root for commands that write local state (dev keys, the dev mesh record): the project's,
 * or the working directory when there is no project (e.g. `meshwork token` before `init`).
 */
export function projectRoot(from = process.cwd()): string {
  return findProjectRoot(from) ?? resolve(from);
}

/** Reads and checks the project at or above `from`; errors name the file, line and field. */
export function loadProject(from = process.cwd()): Project {
  const root = findProjectRoot(from);
  if (!root) {
    throw new ProjectError(
      `no ${PROJECT_FILE} in ${resolve(from)} or any directory above it; run \`npx meshwork init\` to create a mesh project here`,
    );
  }
  return parseProject(root, readFileSync(join(root, PROJECT_FILE), 'utf8'));
}

export function parseProject(root: string, text: string): Project {
  const file = join(root, PROJECT_FILE);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const issue = (path: readonly (string | number)[], message: string): ConfigIssue => {
    const node = nodeAt(doc.contents, path);
    const pos = lines.linePos(node?.range?.[0] ?? 0);
    return { file, line: pos.line, column: pos.col, field: fieldOf(path), message };
  };
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
      return { file, line: pos.line, column: pos.col, field: '', message: `YAML: ${e.message.split('\n')[0]}` };
    });
    throw new ProjectError(`${file} is not valid YAML`, issues);
  }
  const parsed = ProjectSpec.safeParse(doc.toJS({ maxAliasCount: 10 }) ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) =>
      issue(
        i.path as (string | number)[],
        i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.join(', ')}` : i.message,
      ),
    );
    throw new ProjectError(`${file} has ${issues.length} error(s)`, issues);
  }
  const spec = parsed.data;
  const issues: ConfigIssue[] = [];
  const inside = (path: readonly (string | number)[], p: string) => {
    if (isAbsolute(p) || relative(root, resolve(root, p)).startsWith('..'))
      issues.push(issue(path, `must be a path inside the project (relative to ${PROJECT_FILE}), got "${p}"`));
    else if (!existsSync(resolve(root, p))) issues.push(issue(path, `${p} does not exist`));
  };
  inside(['routes'], spec.routes);
  inside(['gateway'], spec.gateway);
  const seen = new Set<string>([normal(spec.gateway)]);
  spec.workers.forEach((w, i) => {
    inside(['workers', i, 'config'], w.config);
    if (w.service === 'gateway') issues.push(issue(['workers', i, 'service'], '"gateway" is the gateway\'s own name'));
    if (seen.has(normal(w.config)))
      issues.push(issue(['workers', i, 'config'], `${w.config} is listed twice (each worker config once)`));
    seen.add(normal(w.config));
  });
  if (issues.length > 0) throw new ProjectError(`${file} has ${issues.length} error(s)`, issues);
  return {
    root,
    file,
    routesDir: resolve(root, spec.routes),
    builtConfig: resolve(root, BUILT_CONFIG),
    workers: [
      { config: normal(spec.gateway), member: 'gateway' },
      ...spec.workers.map((w) => ({ config: normal(w.config), member: w.service })),
    ],
  };
}

function normal(p: string): string {
  return relative('.', p.replace(/\\/g, '/')) || p;
}

function fieldOf(path: readonly (string | number)[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

/** The deepest node along `path` (a missing field points at its parent). */
function nodeAt(node: YamlNode | null, path: readonly (string | number)[]): YamlNode | null {
  let current = node;
  for (const seg of path) {
    if (isMap(current)) {
      const pair = current.items.find((p) => (p.key as { value?: unknown } | null)?.value === seg);
      if (!pair) return current;
      current = (pair.value as YamlNode | null) ?? (pair.key as YamlNode);
    } else if (isSeq(current) && typeof seg === 'number') {
      const next = current.items[seg] as YamlNode | undefined;
      if (!next) return current;
      current = next;
    } else return current;
  }
  return current;
}
