/**
 * meshwork as a user gets it: `npm pack`, the tarball installed into a fresh project outside
 * this repository, then `meshwork init`, `meshwork add service`, `meshwork dev` and real HTTP
 * through gateway -> service -> service with a token from `meshwork token`, and finally
 * `meshwork deploy --dry-run` bundling every worker.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUIET_WRANGLER_ENV } from '../../src/node/dev/workers.ts';
import { localFetch } from '../support/local-http.ts';
import { freePort } from '../support/mesh-process.ts';
import { installIntoFreshProject, npmPack } from '../support/pack-install.ts';

let app = '';
const ENV = { ...process.env, ...QUIET_WRANGLER_ENV, MESHWORK_URL: '', MESH_ADMIN_TOKEN: '' };

/** `npx meshwork ...` in the user's project. */
function meshwork(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(join(app, 'node_modules/.bin/meshwork'), args, { cwd: app, encoding: 'utf8', env: ENV });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dev: ChildProcess | undefined;
let devLog = '';

async function stopDev(): Promise<void> {
  if (!dev || dev.exitCode !== null || dev.pid === undefined) return;
  const exited = new Promise<void>((r) => dev!.once('exit', () => r()));
  process.kill(-dev.pid, 'SIGTERM');
  const timer = setTimeout(() => process.kill(-dev!.pid!, 'SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

beforeAll(() => {
  app = installIntoFreshProject(npmPack());
}, 240_000);

afterAll(stopDev);

describe('meshwork installed from its tarball into a new project', () => {
  it('exposes the worker API and the bin by name, with types, and nothing under src/ by path', () => {
    const pkg = JSON.parse(readFileSync(join(app, 'node_modules/meshwork/package.json'), 'utf8')) as {
      exports: Record<string, { types?: string; default?: string } | string>;
    };
    for (const entry of ['.', './gateway']) {
      const e = pkg.exports[entry] as { types: string; default: string };
      expect(existsSync(join(app, 'node_modules/meshwork', e.types)), `${entry} types`).toBe(true);
      expect(existsSync(join(app, 'node_modules/meshwork', e.default)), `${entry} code`).toBe(true);
    }
    // The dashboard ships built; the routes of this repository do not ship at all.
    expect(existsSync(join(app, 'node_modules/meshwork/src/generated/ui-assets.ts'))).toBe(true);
    expect(existsSync(join(app, 'node_modules/meshwork/routes'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/meshwork/.meshwork'))).toBe(false);
    const version = meshwork('--version');
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout.trim()).toMatch(/^meshwork \d+\.\d+\.\d+/);
  });

  it('init and add service scaffold a mesh that validates', () => {
    const init = meshwork('init');
    expect(init.code, init.stderr + init.stdout).toBe(0);
    for (const f of [
      'meshwork.yaml',
      'wrangler.toml',
      'src/gateway.ts',
      'routes/mesh.yaml',
      'services/hello/src/index.ts',
    ])
      expect(existsSync(join(app, f)), f).toBe(true);
    const add = meshwork('add', 'service', 'greeter', '--callers', 'hello');
    expect(add.code, add.stderr + add.stdout).toBe(0);
    const validate = meshwork('validate');
    expect(validate.code, validate.stderr).toBe(0);
    expect(validate.stdout).toMatch(/valid .*2 services, 2 routes/);
    // Nothing was written inside the installed package.
    expect(existsSync(join(app, 'node_modules/meshwork/.meshwork'))).toBe(false);
  });

  it('dev runs the whole mesh: gateway -> hello -> greeter with a token from meshwork token', async () => {
    // What a user writes: hello calls greeter through the mesh client.
    writeFileSync(
      join(app, 'services/hello/src/index.ts'),
      `import { withMesh } from 'meshwork';

export default withMesh(
  async (_request, _env, _ctx, mesh) => {
    const res = await mesh.fetch('greeter', '/greeter/hi');
    if (!res.ok) return res;
    return Response.json({ hello: 'from hello', user: mesh.user?.sub ?? null, greeter: await res.json() });
  },
  { service: 'hello' },
);
`,
    );
    // A user's own local secret beside the mesh's dev keys survives meshwork dev.
    writeFileSync(join(app, 'services/hello/.dev.vars'), 'MY_API_SECRET=keep-me\n');

    const port = await freePort();
    dev = spawn(join(app, 'node_modules/.bin/meshwork'), ['dev', '--port', String(port)], {
      cwd: app,
      env: ENV,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    dev.stdout!.on('data', (d: Buffer) => (devLog += d.toString()));
    dev.stderr!.on('data', (d: Buffer) => (devLog += d.toString()));
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 150_000;
    while (!devLog.includes('the mesh is running')) {
      if (dev.exitCode !== null) throw new Error(`meshwork dev exited (${dev.exitCode}):\n${devLog}`);
      if (Date.now() > deadline) throw new Error(`meshwork dev did not start:\n${devLog}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    // The banner's CLI lines name the port it runs on, and nothing announced a rebuild that
    // did not happen.
    expect(devLog).toContain(`npx meshwork status --url ${base}`);
    expect(devLog).not.toMatch(/restarting build/);

    // A broken routes edit is reported once, with file:line, and the mesh keeps serving; the fix reloads.
    const waitFor = async (text: string, from: number) => {
      const until = Date.now() + 30_000;
      while (!devLog.slice(from).includes(text)) {
        if (Date.now() > until) throw new Error(`no "${text}" from meshwork dev:\n${devLog}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const routesFile = join(app, 'routes/greeter.yaml');
    const good = readFileSync(routesFile, 'utf8');
    let mark = devLog.length;
    writeFileSync(routesFile, good.replace('    service: greeter', '    servce: greeter'));
    await waitFor('still serving the last valid config', mark).catch((e: unknown) => {
      // The steps after this one need the valid file.
      writeFileSync(routesFile, good);
      throw e;
    });
    expect(devLog.slice(mark).match(/unknown field "servce"/g)).toHaveLength(1);
    expect(devLog.slice(mark)).toMatch(/routes\/greeter\.yaml:\d+:\d+: routes\[0\]\.servce/);
    mark = devLog.length;
    writeFileSync(routesFile, good);
    await waitFor('is valid again', mark);

    const token = meshwork('token', '--sub', 'alice', '--ttl', '10m');
    expect(token.code, token.stderr).toBe(0);
    const jwt = token.stdout.trim().split('\n').pop()!;

    expect((await localFetch(`${base}/hello`)).status).toBe(401);
    let res = await localFetch(`${base}/hello`, { headers: { authorization: `Bearer ${jwt}` } });
    // The first call may land while the services are still loading.
    for (let i = 0; i < 40 && res.status >= 500; i++) {
      await new Promise((r) => setTimeout(r, 500));
      res = await localFetch(`${base}/hello`, { headers: { authorization: `Bearer ${jwt}` } });
    }
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status, `${JSON.stringify(body)}\n${devLog}`).toBe(200);
    expect(body).toMatchObject({
      hello: 'from hello',
      user: 'alice',
      greeter: { service: 'greeter', path: '/greeter/hi', caller: 'hello', user: 'alice' },
    });
    expect(readFileSync(join(app, 'services/hello/.dev.vars'), 'utf8')).toMatch(/^MY_API_SECRET=keep-me$/m);

    // The CLI finds the running dev mesh of this project without --url.
    const status = meshwork('status', '-o', 'json');
    expect(status.code, status.stderr).toBe(0);
    const names = (JSON.parse(status.stdout) as { services: Array<{ name: string }> }).services.map((s) => s.name);
    expect(names.sort()).toEqual(['greeter', 'hello']);
    await stopDev();
  }, 240_000);

  it('deploy --dry-run bundles every worker, with the routes compiled in', () => {
    const r = meshwork('deploy', '--dry-run');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\[1\/3\] bundling hello/);
    expect(r.stdout).toMatch(/\[3\/3\] bundling gateway/);
    const version = (JSON.parse(readFileSync(join(app, '.meshwork/mesh-config.json'), 'utf8')) as { version: string })
      .version;
    const out = join(app, '.meshwork/deploy');
    const bundles = readdirSync(out);
    expect(bundles).toHaveLength(3);
    for (const dir of bundles) {
      const js = readdirSync(join(out, dir)).filter((f) => f.endsWith('.js'));
      expect(js, dir).toHaveLength(1);
      expect(readFileSync(join(out, dir, js[0]!), 'utf8')).toContain(version);
    }
    // The placeholder KV id would be refused by a real deploy; the dry run says so.
    expect(r.stderr).toMatch(/MESH_KV id "0{32}" is a placeholder/);
    expect(r.stdout).toMatch(/secrets: MESH_SIGNING_KEY, MESH_PUBLIC_KEYS, MESH_ADMIN_TOKEN/);
  });

  it('deploy --dry-run --bootstrap starts with the gateway bound to none of the services', () => {
    const r = meshwork('deploy', '--dry-run', '--bootstrap');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const steps = r.stdout.split(/\n(?=\[\d\/4\])/);
    expect(steps.map((s) => /^\[(\d)\/4\] bundling ([^:\s]+)/m.exec(s)?.slice(1).join(' ')).filter(Boolean)).toEqual([
      '1 gateway',
      '2 hello',
      '3 greeter',
      '4 gateway',
    ]);
    // wrangler lists each bundle's bindings: the bootstrap gateway has no service binding to hello.
    expect(steps[1]).toMatch(/bootstrap/);
    expect(steps[1]).not.toMatch(/env\.HELLO\b/);
    expect(steps[4]).toMatch(/env\.HELLO\b/);
    expect(existsSync(join(app, '.meshwork-bootstrap.wrangler.json'))).toBe(false);
  });
});
