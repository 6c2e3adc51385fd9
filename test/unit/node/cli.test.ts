import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { printable } from '../../../src/node/cli/control.ts';

/** The CLI run without blocking this process (for tests that serve it something meanwhile). */
function meshworkAsync(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env };
  delete env.MESH_ADMIN_TOKEN;
  delete env.MESHWORK_URL;
  env.MESHWORK_CONFIG = '/nonexistent/meshwork-config.json';
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/meshwork.js', ...args], { env, encoding: 'utf8' }, (e, stdout, stderr) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr }),
    );
  });
}

function meshwork(...args: string[]) {
  const env = { ...process.env, MESHWORK_CONFIG: '/nonexistent/meshwork-config.json' };
  const r = spawnSync(process.execPath, ['bin/meshwork.js', ...args], { encoding: 'utf8', env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('meshwork validate', () => {
  it('accepts the shipped routes directory', () => {
    const r = meshwork('validate');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^routes: valid \(config [0-9a-f]{12}: 2 services, 2 routes\)/);
  });

  it('exits 1 and prints file:line:column for a typo in a field name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-cli-'));
    writeFileSync(
      join(dir, 'mesh.yaml'),
      'services:\n  s:\n    backends:\n      - binding: S\nroutes:\n  - name: r\n    servce: s\n',
    );
    const r = meshwork('validate', dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`mesh.yaml:7:5: routes[0].servce: unknown field "servce" (did you mean "service"?)`);
  });

  it('checks the gateway declares every binding its routes use', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshwork-bindings-'));
    writeFileSync(
      join(dir, 'wrangler.toml'),
      'name = "gw"\nmain = "x.ts"\n[[services]]\nbinding = "SERVICE_A"\nservice = "service-a"\n',
    );
    const r = meshwork('validate', '--check-bindings', join(dir, 'wrangler.toml'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('service "service-b" backend binding SERVICE_B_V1 is not declared');
    expect(r.stderr).toContain('SERVICE_B_V2');
    expect(r.stderr).not.toContain('SERVICE_A ');
    expect(meshwork('validate', '--check-bindings', 'wrangler.toml').code).toBe(0);
  });

  it('never sends the admin token in the clear to another machine', () => {
    const r = meshwork('status', '--url', 'http://gateway.example.com', '--token', 'x'.repeat(32));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('must use https://');
  });

  it('sends the local dev token only to the mesh this checkout started', async () => {
    expect(meshwork('token', '--sub', 'setup').code).toBe(0); // creates the dev keys if need be
    const { adminToken } = JSON.parse(readFileSync('.meshwork/dev-keys.json', 'utf8')) as { adminToken: string };
    const seen: (string | undefined)[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ revision: 1, version: 'abc', services: {}, routes: 0 }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const record = `.meshwork/dev-mesh-${(server.address() as AddressInfo).port}.json`;
    try {
      // Something else on a local port: no token leaves, and the user is told why.
      const stranger = await meshworkAsync('status', '--url', url);
      expect(stranger.code).toBe(2);
      expect(stranger.stderr).toContain(`no admin token for ${url}`);
      expect(stranger.stderr).toContain(`the dev mesh's token goes only to a mesh \`meshwork dev\` started in`);
      expect(stranger.stderr).toContain(`none runs at ${url}`);
      expect(seen).toEqual([]);
      // A record left by a process that has exited does not count either.
      writeFileSync(record, JSON.stringify({ url, pid: 2 ** 22 + 1 }));
      expect((await meshworkAsync('status', '--url', url)).code).toBe(2);
      expect(seen).toEqual([]);
      // The mesh `npm run dev` recorded (a live process at that URL) gets the token.
      writeFileSync(record, JSON.stringify({ url, pid: process.pid }));
      await meshworkAsync('status', '--url', url);
      expect(seen).toEqual([`Bearer ${adminToken}`]);
    } finally {
      rmSync(record, { force: true });
      server.close();
    }
  });

  it('escapes control characters a gateway sends before printing them', () => {
    expect(printable('svc\u001b[2J\u001b[31mok\r')).toBe('svc\\x1b[2J\\x1b[31mok\\x0d');
    expect(printable('a\u202eb\u0085')).toBe('a\\u202eb\\x85');
    expect(printable('plain text\nand lines\tstay')).toBe('plain text\nand lines\tstay');
  });

  it('exits 2 on usage errors', () => {
    expect(meshwork('validate', 'a', 'b').code).toBe(2);
    expect(meshwork('no-such-command').code).toBe(2);
    expect(meshwork('validate', '--no-such-flag').code).toBe(2);
  });

  it('exits 1 with a clear message for a missing directory', () => {
    const r = meshwork('validate', '/nonexistent/routes');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('routes directory not found: /nonexistent/routes');
  });
});

describe('meshwork token', () => {
  it('prints, alone on its last line, a token signed by the dev issuer the example routes trust', async () => {
    const r = meshwork(
      'token',
      '--sub',
      'alice',
      '--scope',
      'read:a',
      '--scope',
      'write:a',
      '--ttl',
      '1h',
      '--claim',
      'tenant=acme',
    );
    expect(r.code).toBe(0);
    const token = r.stdout.trim().split('\n').at(-1)!;
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const keys = JSON.parse(readFileSync('.meshwork/dev-keys.json', 'utf8'));
    const { payload } = await jwtVerify(token, await importJWK(keys.issuer.publicJwk, 'ES256'), {
      issuer: 'https://dev.meshwork.local',
      audience: 'meshwork',
      algorithms: ['ES256'],
    });
    expect(payload).toMatchObject({ sub: 'alice', scope: 'read:a write:a', tenant: 'acme' });
    expect(payload.exp! - payload.iat!).toBe(3600);
    expect(decodeProtectedHeader(token).kid).toBe(keys.issuer.publicJwk.kid);
    // The routes file reads the same issuer's public keys from MESH_DEV_JWKS in .dev.vars.
    expect(readFileSync('.dev.vars', 'utf8')).toContain(JSON.stringify(keys.issuer.publicJwk));
  });

  it('refuses to run without --sub or with a bad --ttl (exit 2)', () => {
    expect(meshwork('token').code).toBe(2);
    const bad = meshwork('token', '--sub', 'a', '--ttl', 'soon');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--ttl must be a duration');
  });
});

describe('meshwork keys generate', () => {
  it('prints a private JWK for the secret and a public JWK bound to the member by its kid', () => {
    const r = meshwork('keys', 'generate', '--member', 'billing');
    expect(r.code).toBe(0);
    const [priv, pub] = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    expect(priv).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', kid: expect.stringMatching(/^billing\./) });
    expect(priv.d).toEqual(expect.any(String));
    expect(pub.kid).toBe(priv.kid);
    expect(pub).not.toHaveProperty('d');
  });

  it('needs a valid member name', () => {
    expect(meshwork('keys', 'generate').code).toBe(2);
    expect(meshwork('keys', 'generate', '--member', 'Not Valid').code).toBe(2);
  });
});
