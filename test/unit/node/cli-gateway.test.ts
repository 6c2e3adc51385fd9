/**
 * Where the CLI finds the gateway (--url, MESHWORK_URL, the current context, the project's dev
 * mesh), which token it sends where, the saved contexts, the project root, and errors that say
 * what to do next. Gateways are stand-ins for the admin API (a local node:http server).
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lines, meshwork, tempDir, withGateway, type Answer } from './cli-harness.ts';

const STATUS = { configVersion: '8e153b69a26e', configRevision: 0, revision: 1, services: [] };
const status = (): Answer => ({ json: STATUS });

/** A project directory with a dev mesh record per URL (alive: this test process) and dev keys. */
function project(meshUrls: string[], options: { pid?: number } = {}): string {
  const dir = tempDir('meshwork-project-');
  mkdirSync(join(dir, '.meshwork'));
  writeFileSync(
    join(dir, '.meshwork/dev-keys.json'),
    JSON.stringify({ issuer: {}, members: {}, adminToken: 'd'.repeat(32) }),
  );
  for (const url of meshUrls)
    writeFileSync(
      join(dir, `.meshwork/dev-mesh-${new URL(url).port}.json`),
      JSON.stringify({ url, pid: options.pid ?? process.pid }),
    );
  return dir;
}

/** A local port nothing listens on (just closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

describe('meshwork context', () => {
  it('set, use, list, delete: kept in $MESHWORK_CONFIG with mode 0600, the current one marked', async () => {
    const config = join(tempDir(), 'sub', 'config.json');
    const env = { MESHWORK_CONFIG: config };
    const set = await meshwork(
      ['context', 'set', 'prod', '--url', 'https://mesh.example.com/', '--token-env', 'PROD_TOKEN'],
      { env },
    );
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('context "prod" saved: https://mesh.example.com, its token from $PROD_TOKEN');
    expect(set.stdout).toContain('use it with: meshwork context use prod');
    expect(statSync(config).mode & 0o777).toBe(0o600);
    expect(
      (
        await meshwork(['context', 'set', 'local', '--url', 'http://127.0.0.1:8788', '--token', 's'.repeat(32)], {
          env,
        })
      ).code,
    ).toBe(0);
    expect(statSync(config).mode & 0o777).toBe(0o600);
    expect((await meshwork(['context', 'use', 'prod'], { env })).stdout).toBe(
      'current context: prod (https://mesh.example.com)\n',
    );
    expect(JSON.parse(readFileSync(config, 'utf8'))).toEqual({
      currentContext: 'prod',
      contexts: {
        prod: { url: 'https://mesh.example.com', tokenEnv: 'PROD_TOKEN' },
        local: { url: 'http://127.0.0.1:8788', token: 's'.repeat(32) },
      },
    });

    const list = await meshwork(['context', 'list'], { env });
    expect(lines(list.stdout).map((l) => l.split(/\s+/))).toEqual([
      ['CURRENT', 'NAME', 'URL', 'TOKEN'],
      ['', 'local', 'http://127.0.0.1:8788', 'stored'],
      ['*', 'prod', 'https://mesh.example.com', '$PROD_TOKEN'],
    ]);
    // Never the token itself.
    const json = await meshwork(['context', 'list', '-o', 'json'], { env });
    expect(json.stdout).not.toContain('s'.repeat(32));
    expect(JSON.parse(json.stdout)).toEqual({
      currentContext: 'prod',
      contexts: [
        { name: 'local', url: 'http://127.0.0.1:8788', tokenStored: true, current: false },
        { name: 'prod', url: 'https://mesh.example.com', tokenEnv: 'PROD_TOKEN', tokenStored: false, current: true },
      ],
    });

    const unknown = await meshwork(['context', 'use', 'staging'], { env });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no context "staging"');
    expect(unknown.stderr).toContain('(have: prod, local)');
    expect((await meshwork(['context', 'delete', 'prod'], { env })).stdout).toBe(
      'context "prod" deleted; there is no current context now\n',
    );
    expect(JSON.parse(readFileSync(config, 'utf8'))).toEqual({
      contexts: { local: { url: 'http://127.0.0.1:8788', token: 's'.repeat(32) } },
    });
    expect((await meshwork(['context', 'use', 'local'], { env })).code).toBe(0);
    expect((await meshwork(['context', 'use', '--none'], { env })).code).toBe(0);
    expect(JSON.parse(readFileSync(config, 'utf8')).currentContext).toBeUndefined();
  });

  it('never saves a gateway reached in the clear (http:// not on this machine); usage errors exit 2', async () => {
    const config = join(tempDir(), 'config.json');
    const env = { MESHWORK_CONFIG: config };
    const cases: Array<[string[], string]> = [
      [['set', 'x', '--url', 'http://mesh.example.com', '--token', 't'.repeat(32)], 'must use https://'],
      [['set', 'x', '--url', 'http://mesh.example.com'], 'must use https://'],
      [['set', 'x', '--url', 'https://a.example.com', '--token', 't', '--token-env', 'T'], 'not both'],
      [['set', 'x', '--url', 'https://a.example.com', '--token-env', 'not a var'], 'environment variable name'],
      [['set', 'x'], 'needs --url'],
      [['set', '--url', 'https://a.example.com'], 'needs a context name'],
      [['set', 'bad name', '--url', 'https://a.example.com'], 'a context name is'],
      [['use'], 'needs a context name'],
    ];
    for (const [args, message] of cases) {
      const r = await meshwork(['context', ...args], { env });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(message);
    }
    expect(existsSync(config)).toBe(false);
  });

  it('lives in $XDG_CONFIG_HOME/meshwork/config.json, else ~/.config/meshwork/config.json', async () => {
    const xdg = tempDir();
    const home = tempDir();
    const args = ['context', 'set', 'a', '--url', 'https://a.example.com'];
    expect((await meshwork(args, { env: { MESHWORK_CONFIG: undefined, XDG_CONFIG_HOME: xdg, HOME: home } })).code).toBe(
      0,
    );
    expect(existsSync(join(xdg, 'meshwork/config.json'))).toBe(true);
    expect(existsSync(join(home, '.config/meshwork/config.json'))).toBe(false);
    expect(
      (await meshwork(args, { env: { MESHWORK_CONFIG: undefined, XDG_CONFIG_HOME: undefined, HOME: home } })).code,
    ).toBe(0);
    expect(statSync(join(home, '.config/meshwork/config.json')).mode & 0o777).toBe(0o600);
  });

  it('a broken config file is an error that names it', async () => {
    const config = join(tempDir(), 'config.json');
    writeFileSync(config, '{ not json');
    const r = await meshwork(['context', 'list'], { env: { MESHWORK_CONFIG: config } });
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringContaining(`${config} is not valid JSON`)]);
  });
});

describe('which gateway, with which token', () => {
  it('--url, else MESHWORK_URL, else the current context; a context token goes only to its own gateway', async () => {
    await withGateway(status, async (contextUrl, contextSeen) => {
      await withGateway(status, async (envUrl, envSeen) => {
        await withGateway(status, async (flagUrl, flagSeen) => {
          const config = join(tempDir(), 'config.json');
          writeFileSync(
            config,
            JSON.stringify({ currentContext: 'c', contexts: { c: { url: contextUrl, tokenEnv: 'C_TOKEN' } } }),
          );
          const env = { MESHWORK_CONFIG: config, C_TOKEN: 'c'.repeat(32) };
          const viaContext = await meshwork(['status'], { env });
          expect(viaContext.code, viaContext.stderr).toBe(0);
          expect(viaContext.stdout).toContain(`${contextUrl}: config 8e153b69a26e`);
          expect(contextSeen.map((s) => s.authorization)).toEqual([`Bearer ${'c'.repeat(32)}`]);

          // MESHWORK_URL wins over the context, and the context's token stays home.
          const noToken = await meshwork(['status'], { env: { ...env, MESHWORK_URL: envUrl } });
          expect(noToken.code).toBe(2);
          expect(noToken.stderr).toContain(`no admin token for ${envUrl}`);
          const viaEnv = await meshwork(['status'], {
            env: { ...env, MESHWORK_URL: envUrl, MESH_ADMIN_TOKEN: 'e'.repeat(32) },
          });
          expect(viaEnv.code, viaEnv.stderr).toBe(0);
          expect(envSeen.map((s) => s.authorization)).toEqual([`Bearer ${'e'.repeat(32)}`]);

          const viaFlag = await meshwork(['status', '--url', flagUrl, '--token', 'f'.repeat(32)], {
            env: { ...env, MESHWORK_URL: envUrl },
          });
          expect(viaFlag.code, viaFlag.stderr).toBe(0);
          expect(flagSeen.map((s) => s.authorization)).toEqual([`Bearer ${'f'.repeat(32)}`]);
          expect(contextSeen).toHaveLength(1);
          expect(envSeen).toHaveLength(1);
        });
      });
    });
  });

  it("a context's --token-env that is not set is a usage error naming the variable", async () => {
    const config = join(tempDir(), 'config.json');
    writeFileSync(
      config,
      JSON.stringify({ currentContext: 'c', contexts: { c: { url: 'https://c.example.com', tokenEnv: 'C_TOKEN' } } }),
    );
    const r = await meshwork(['status'], { env: { MESHWORK_CONFIG: config } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('context "c" takes its admin token from $C_TOKEN, which is not set');
  });

  it("without a URL: the project's running dev mesh, with the dev token, found from any directory of the project", async () => {
    await withGateway(status, async (url, seen) => {
      const dir = project([url]);
      writeFileSync(join(dir, 'meshwork.yaml'), 'routes: routes\n');
      mkdirSync(join(dir, 'routes'));
      writeFileSync(join(dir, 'wrangler.toml'), 'name = "gw"\n');
      mkdirSync(join(dir, 'services/hello'), { recursive: true });
      for (const cwd of [dir, join(dir, 'services/hello')]) {
        const r = await meshwork(['status'], { cwd });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain(`${url}: config 8e153b69a26e`);
      }
      expect(seen.map((s) => s.authorization)).toEqual(Array(2).fill(`Bearer ${'d'.repeat(32)}`));
    });
  });

  it('several dev meshes running: names their ports and asks for --url (exit 2); nothing is sent', async () => {
    const dir = project(['http://127.0.0.1:18101', 'http://127.0.0.1:18102']);
    const r = await meshwork(['history'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([
      `meshwork history: 2 dev meshes run in ${dir} (ports 18101, 18102): pick one with --url http://127.0.0.1:<port>; see meshwork history --help`,
    ]);
  });

  it('no dev mesh running (a record of an exited process does not count): says so and what to do', async () => {
    const dir = project(['http://127.0.0.1:18103'], { pid: 2 ** 22 + 1 });
    const r = await meshwork(['status'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([
      `meshwork status: no gateway: no dev mesh is running in ${dir}, and no --url, MESHWORK_URL or current context names one`,
      'start one with `npx meshwork dev`, or pass --url',
    ]);
  });
});

describe('errors that say what to do next', () => {
  const TOKEN = 't'.repeat(32);

  it('cannot reach a local gateway: whether a dev mesh runs, and where', async () => {
    const port = await closedPort();
    const empty = tempDir();
    const none = await meshwork(['status', '--url', `http://127.0.0.1:${port}`, '--token', TOKEN], { cwd: empty });
    expect(none.code).toBe(1);
    expect(lines(none.stderr)).toEqual([
      `meshwork status: cannot reach http://127.0.0.1:${port} (ECONNREFUSED)`,
      `no dev mesh is running in ${empty}: start one with \`npx meshwork dev\`, or pass the gateway's --url`,
    ]);
    await withGateway(status, async (url) => {
      const other = await meshwork(['status', '--url', `http://127.0.0.1:${port}`, '--token', TOKEN], {
        cwd: project([url]),
      });
      expect(lines(other.stderr)[1]).toBe(`this project's dev mesh runs at ${url}: pass that as --url`);
    });
    // The dev mesh recorded is alive as a process but does not answer.
    const dir = project([`http://127.0.0.1:${port}`]);
    const stale = await meshwork(['status'], { cwd: dir });
    expect(stale.code).toBe(1);
    expect(lines(stale.stderr)).toEqual([
      `meshwork status: cannot reach http://127.0.0.1:${port} (ECONNREFUSED)`,
      `the dev mesh recorded in .meshwork/dev-mesh-${port}.json (pid ${process.pid}) does not answer: restart \`npx meshwork dev\``,
    ]);
  });

  it('401: says where the token came from, in two lines', async () => {
    const refuse = (): Answer => ({
      status: 401,
      json: { error: { code: 'invalid_token', message: 'not a valid admin token' } },
    });
    await withGateway(refuse, async (url) => {
      const flag = await meshwork(['status', '--url', url, '--token', TOKEN]);
      expect(flag.code).toBe(1);
      expect(lines(flag.stderr)).toEqual([
        `meshwork status: ${url} refused the admin token from --token (error 401 invalid_token: not a valid admin token)`,
        'the gateway takes its MESH_ADMIN_TOKEN secret or a JWT from admin.issuers: pass it with --token or MESH_ADMIN_TOKEN',
      ]);
      const env = await meshwork(['history', '--url', url], { env: { MESH_ADMIN_TOKEN: TOKEN } });
      expect(lines(env.stderr)[0]).toContain('refused the admin token from MESH_ADMIN_TOKEN (error 401');
      const dir = project([url]);
      const dev = await meshwork(['status'], { cwd: dir });
      expect(lines(dev.stderr)).toEqual([
        `meshwork status: ${url} refused the admin token from the dev keys in ${join(dir, '.meshwork/dev-keys.json')} (error 401 invalid_token: not a valid admin token)`,
        'if the dev keys were re-created since the mesh started, restart `npx meshwork dev`',
      ]);
    });
  });

  it('404 on the admin API: not a meshwork gateway (or an old one); JSON that is not an answer: the same doubt', async () => {
    await withGateway(
      (req) =>
        req.path === '/_mesh/admin/history'
          ? { status: 404, text: 'Not Found' }
          : { text: '<html>hi</html>', type: 'text/html' },
      async (url) => {
        const missing = await meshwork(['history', '--url', url, '--token', TOKEN]);
        expect(missing.code).toBe(1);
        expect(lines(missing.stderr)).toEqual([
          `meshwork history: ${url}/_mesh/admin/history is not found (404): ${url} is not a meshwork gateway, or runs an older meshwork than this CLI`,
        ]);
        const html = await meshwork(['status', '--url', url, '--token', TOKEN]);
        expect(html.code).toBe(1);
        expect(lines(html.stderr)).toHaveLength(1);
        expect(html.stderr).toContain(`is ${url} a meshwork gateway?`);
      },
    );
  });
});

describe('the project root', () => {
  it('meshwork token writes the dev keys under the project root, for the workers meshwork.yaml lists', async () => {
    const dir = tempDir('meshwork-project-');
    writeFileSync(
      join(dir, 'meshwork.yaml'),
      'workers:\n  - service: hello\n    config: services/hello/wrangler.toml\n',
    );
    mkdirSync(join(dir, 'routes'));
    writeFileSync(join(dir, 'wrangler.toml'), 'name = "gw"\n');
    mkdirSync(join(dir, 'services/hello'), { recursive: true });
    writeFileSync(join(dir, 'services/hello/wrangler.toml'), 'name = "hello"\n');
    const r = await meshwork(['token', '--sub', 'a'], { cwd: join(dir, 'services/hello') });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`created dev keys in ${join(dir, '.meshwork/dev-keys.json')}`);
    const keys = JSON.parse(readFileSync(join(dir, '.meshwork/dev-keys.json'), 'utf8'));
    expect(Object.keys(keys.members).sort()).toEqual(['gateway', 'hello']);
    expect(readFileSync(join(dir, '.dev.vars'), 'utf8')).toContain('MESH_ADMIN_TOKEN');
    expect(readFileSync(join(dir, 'services/hello/.dev.vars'), 'utf8')).toContain('MESH_SIGNING_KEY');
    expect(existsSync(join(dir, 'services/hello/.meshwork'))).toBe(false);
  });

  it('a broken meshwork.yaml: its file:line errors and what failed, never a stack (exit 1)', async () => {
    const dir = tempDir('meshwork-project-');
    writeFileSync(join(dir, 'meshwork.yaml'), 'routes: routes\nworkerz: []\n');
    for (const args of [['token', '--sub', 'a'], ['validate']]) {
      const r = await meshwork(args, { cwd: dir });
      expect(r.code, args[0]).toBe(1);
      expect(lines(r.stderr)).toEqual([
        `${join(dir, 'meshwork.yaml')}:1:1: unknown field(s) workerz`,
        `meshwork ${args[0]}: ${join(dir, 'meshwork.yaml')} has 1 error(s)`,
      ]);
    }
  });

  it('without a project: the working directory, and just the gateway', async () => {
    const dir = tempDir();
    const r = await meshwork(['token', '--sub', 'a'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const keys = JSON.parse(readFileSync(join(dir, '.meshwork/dev-keys.json'), 'utf8'));
    expect(Object.keys(keys.members)).toEqual(['gateway']);
    expect(readFileSync(join(dir, '.dev.vars'), 'utf8')).toContain('MESH_ADMIN_TOKEN');
  });
});
