import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';

function meshwork(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/meshwork.js', ...args], { encoding: 'utf8' });
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
