/**
 * The mesh project file (meshwork.yaml), .dev.vars merging, and what `meshwork init` and
 * `meshwork add service` write: from a user's point of view, in real temporary directories.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateSources } from '../../../src/config/validate.ts';
import { mergeDevVars } from '../../../src/node/dev/dev-vars.ts';
import { checkKv, writeBootstrapConfig, writeKvId } from '../../../src/node/project/deploy.ts';
import { findProjectRoot, loadProject, ProjectError, parseProject } from '../../../src/node/project/project.ts';
import { addService, initProject, ScaffoldError } from '../../../src/node/project/scaffold.ts';
import { readRoutesDir } from '../../../src/node/config/load-dir.ts';

const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

describe('meshwork.yaml', () => {
  it('is found from any directory below it, and lists the gateway first', () => {
    const root = tmp('mw-project-');
    mkdirSync(join(root, 'routes'));
    mkdirSync(join(root, 'svc/a/src'), { recursive: true });
    writeFileSync(join(root, 'wrangler.toml'), 'name = "gw"\n');
    writeFileSync(join(root, 'svc/a/wrangler.toml'), 'name = "a"\n');
    writeFileSync(join(root, 'meshwork.yaml'), 'workers:\n  - service: a\n    config: svc/a/wrangler.toml\n');
    expect(findProjectRoot(join(root, 'svc/a/src'))).toBe(root);
    const project = loadProject(join(root, 'svc/a'));
    expect(project.routesDir).toBe(join(root, 'routes'));
    expect(project.workers).toEqual([
      { config: 'wrangler.toml', member: 'gateway' },
      { config: 'svc/a/wrangler.toml', member: 'a' },
    ]);
  });

  it('names the file, line and field of each mistake', () => {
    const root = tmp('mw-project-');
    mkdirSync(join(root, 'routes'));
    writeFileSync(join(root, 'wrangler.toml'), '');
    const text = 'routes: routes\nworkers:\n  - service: Bad_Name\n    config: nowhere.toml\n  - servce: x\n';
    let error: unknown;
    try {
      parseProject(root, text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProjectError);
    const issues = (error as ProjectError).issues;
    expect(issues.map((i) => [i.line, i.field])).toEqual(
      expect.arrayContaining([
        [3, 'workers[0].service'],
        [5, 'workers[1]'],
      ]),
    );
    expect(issues.every((i) => i.file === join(root, 'meshwork.yaml'))).toBe(true);
  });

  it('refuses paths outside the project, missing files and a config listed twice', () => {
    const root = tmp('mw-project-');
    mkdirSync(join(root, 'routes'));
    writeFileSync(join(root, 'wrangler.toml'), '');
    const text =
      'gateway: ../elsewhere.toml\nworkers:\n  - { service: a, config: a.toml }\n  - { service: b, config: wrangler.toml }\n  - { service: c, config: ./wrangler.toml }\n';
    expect(() => parseProject(root, text)).toThrow(ProjectError);
    try {
      parseProject(root, text);
    } catch (e) {
      const messages = (e as ProjectError).issues.map((i) => `${i.field}: ${i.message}`);
      expect(messages).toEqual([
        expect.stringMatching(/^gateway: must be a path inside the project/),
        expect.stringMatching(/^workers\[0\]\.config: a\.toml does not exist/),
        expect.stringMatching(/^workers\[2\]\.config: \.\/wrangler\.toml is listed twice/),
      ]);
    }
  });

  it('says how to start when there is none', () => {
    const dir = tmp('mw-none-');
    expect(() => loadProject(dir)).toThrow(/no meshwork\.yaml .* run `npx meshwork init`/);
  });
});

describe('.dev.vars', () => {
  it("sets meshwork's variables and keeps the user's lines, comments and order", () => {
    const before = '# my secrets\nMY_API_SECRET=abc\nMESH_SIGNING_KEY=\'old\'\n\nexport OTHER="x y"\n';
    const after = mergeDevVars(before, { MESH_SIGNING_KEY: '{"k":1}', MESH_PUBLIC_KEYS: '{"keys":[]}' });
    expect(after.split('\n')).toEqual([
      '# my secrets',
      'MY_API_SECRET=abc',
      `MESH_SIGNING_KEY='{"k":1}'`,
      '',
      'export OTHER="x y"',
      '',
      '# meshwork dev keys (written by `meshwork dev`; local only, never commit this file):',
      `MESH_PUBLIC_KEYS='{"keys":[]}'`,
      '',
    ]);
    // A second run changes nothing.
    expect(mergeDevVars(after, { MESH_SIGNING_KEY: '{"k":1}', MESH_PUBLIC_KEYS: '{"keys":[]}' })).toBe(after);
  });
});

describe('meshwork init and add service', () => {
  it('scaffold a project whose routes validate and whose workers bind each other', async () => {
    const root = tmp('mw-init-');
    writeFileSync(join(root, '.gitignore'), 'dist/\n');
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'mine', scripts: { test: 'vitest' } }));
    const report = await initProject(root, { service: 'hello' });
    expect(report.created).toEqual(
      expect.arrayContaining([
        'meshwork.yaml',
        'wrangler.toml',
        'src/gateway.ts',
        'routes/mesh.yaml',
        'routes/hello.yaml',
        'services/hello/wrangler.toml',
        'services/hello/src/index.ts',
      ]),
    );
    expect(report.updated).toEqual(expect.arrayContaining(['package.json', '.gitignore']));
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts).toEqual({ test: 'vitest', dev: 'meshwork dev', deploy: 'meshwork deploy' });
    expect(readFileSync(join(root, '.gitignore'), 'utf8')).toMatch(/^dist\/\n.*\.meshwork\/\n\.dev\.vars\n/s);

    await addService(root, 'greeter', { callers: ['hello'] });
    const project = loadProject(root);
    expect(project.workers.map((w) => w.member)).toEqual(['gateway', 'hello', 'greeter']);
    const routes = validateSources(readRoutesDir(project.routesDir));
    expect(routes.ok, JSON.stringify(!routes.ok && routes.errors)).toBe(true);
    if (!routes.ok) return;
    expect(routes.config.services.greeter!.policy.allowCallers).toEqual(['gateway', 'hello']);
    expect(routes.config.routes.map((r) => r.name)).toEqual(['greeter', 'hello']);
    // The gateway binds both services; hello binds greeter (it calls it); greeter binds nothing of theirs.
    const gw = readFileSync(join(root, 'wrangler.toml'), 'utf8');
    expect(gw).toMatch(/binding = "HELLO"\nservice = "hello"/);
    expect(gw).toMatch(/binding = "GREETER"\nservice = "greeter"/);
    expect(readFileSync(join(root, 'services/hello/wrangler.toml'), 'utf8')).toMatch(/binding = "GREETER"/);
    expect(readFileSync(join(root, 'services/greeter/wrangler.toml'), 'utf8')).not.toMatch(/binding = "HELLO"/);
    // The editor schema path is relative to each routes file, so it works wherever the project is.
    expect(readFileSync(join(root, 'routes/greeter.yaml'), 'utf8')).toMatch(
      /^# yaml-language-server: \$schema=\S+routes\.schema\.json$/m,
    );
  });

  it('refuse what would overwrite or break the project, saying why', async () => {
    const root = tmp('mw-init-');
    await initProject(root);
    await expect(initProject(root)).rejects.toThrow(/meshwork\.yaml exists/);
    await expect(addService(root, 'hello')).rejects.toThrow(/already in meshwork\.yaml/);
    await expect(addService(root, 'Hello_World')).rejects.toThrow(ScaffoldError);
    await expect(addService(root, 'gateway')).rejects.toThrow(/gateway's own name/);
    await expect(addService(root, 'b', { callers: ['nobody'] })).rejects.toThrow(
      /"nobody" is not a service of this mesh/,
    );
  });
});

describe('meshwork deploy checks', () => {
  it('refuses the placeholder KV id and different namespaces, naming file and line', async () => {
    const root = tmp('mw-kv-');
    await initProject(root);
    const project = loadProject(root);
    expect(checkKv(project)).toEqual([
      expect.stringMatching(/^wrangler\.toml:\d+: MESH_KV id "0{32}" is a placeholder/),
      expect.stringMatching(/^services\/hello\/wrangler\.toml:\d+: MESH_KV id "0{32}" is a placeholder/),
    ]);
    const gw = join(root, 'wrangler.toml');
    writeFileSync(gw, readFileSync(gw, 'utf8').replace(/0{32}/, 'a'.repeat(32)));
    const svc = join(root, 'services/hello/wrangler.toml');
    writeFileSync(svc, readFileSync(svc, 'utf8').replace(/0{32}/, 'b'.repeat(32)));
    expect(checkKv(project)).toEqual([expect.stringMatching(/bind different MESH_KV namespaces/)]);
  });

  it('--kv-id writes one id into every worker config, keeping the rest of each file', async () => {
    const root = tmp('mw-kv-');
    await initProject(root);
    await addService(root, 'greeter', { callers: ['hello'] });
    const project = loadProject(root);
    const before = project.workers.map((w) => readFileSync(join(root, w.config), 'utf8'));
    writeKvId(project, 'c'.repeat(32), () => undefined);
    expect(checkKv(project)).toEqual([]);
    project.workers.forEach((w, i) =>
      expect(readFileSync(join(root, w.config), 'utf8')).toBe(before[i]!.replace(/0{32}/, 'c'.repeat(32))),
    );
    expect(() => writeKvId(project, 'not-an-id', () => undefined)).toThrow(/32 hex digits/);
  });

  it('a first deploy starts from a gateway config without its bindings to the mesh services', async () => {
    const root = tmp('mw-boot-');
    await initProject(root);
    await addService(root, 'greeter');
    const gw = join(root, 'wrangler.toml');
    // A binding to a worker outside the mesh stays: it exists already.
    writeFileSync(gw, `${readFileSync(gw, 'utf8')}\n[[services]]\nbinding = "BILLING"\nservice = "billing-api"\n`);
    const project = loadProject(root);
    const rel = await writeBootstrapConfig(project, project.workers[0]!, project.workers.slice(1));
    const copy = JSON.parse(readFileSync(join(root, rel), 'utf8')) as {
      name: string;
      services: Array<{ binding: string }>;
      durable_objects: { bindings: unknown[] };
      kv_namespaces: unknown[];
    };
    expect(rel).toBe('.meshwork-bootstrap.wrangler.json');
    expect(copy.name).toBe('meshwork-gateway');
    expect(copy.services.map((s) => s.binding)).toEqual(['BILLING']);
    expect(copy.durable_objects.bindings).toHaveLength(3);
    expect(copy.kv_namespaces).toHaveLength(1);
  });
});
