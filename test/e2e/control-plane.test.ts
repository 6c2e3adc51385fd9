import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMesh, type RunningMesh } from '../support/mesh-process.ts';
import { localFetch } from '../support/local-http.ts';

const persistTo = mkdtempSync(join(tmpdir(), 'meshwork-cp-state-'));
let mesh: RunningMesh;

function meshwork(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/meshwork.js', ...args, '--url', mesh.url], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A copy of routes/ with an extra route, as a user would edit it. */
function routesWith(extra: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-routes-'));
  cpSync('routes', dir, { recursive: true });
  writeFileSync(join(dir, 'mesh.yaml'), readFileSync(join(dir, 'mesh.yaml'), 'utf8') + extra);
  return dir;
}

const HELLO_ROUTE = `
  - name: hello
    matches: [{ path: { exact: /hello } }]
    service: service-b
    rewrite: { path: /service-b }
`;

async function status(path: string): Promise<number> {
  const res = await localFetch(`${mesh.url}${path}`);
  await res.arrayBuffer();
  return res.status;
}

/** Polls until the gateway answers `path` with `code`; returns how long that took (ms). */
async function until(path: string, code: number, timeoutMs = 20_000): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if ((await status(path)) === code) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${path} did not answer ${code} within ${timeoutMs} ms`);
}

function adminToken(): string {
  return JSON.parse(readFileSync('.meshwork/dev-keys.json', 'utf8')).adminToken;
}

async function adminStatus(): Promise<{
  configRevision: number;
  configVersion: string;
  revision: number;
  services: Array<{ name: string; endpoints: Array<{ version: string | null; status: string }> }>;
}> {
  const res = await localFetch(`${mesh.url}/_mesh/admin/status`, {
    headers: { authorization: `Bearer ${adminToken()}` },
  });
  expect(res.status).toBe(200);
  return res.json() as never;
}

beforeAll(async () => {
  mesh = await startMesh({ persistTo });
});

afterAll(async () => {
  await mesh?.stop();
});

describe('control plane against the local mesh (CLI over real HTTP)', () => {
  it('the example services register themselves and `meshwork status` lists them', async () => {
    const deadline = Date.now() + 60_000;
    let registered: string[] = [];
    while (Date.now() < deadline) {
      await status('/service-b');
      const s = await adminStatus();
      registered = s.services.flatMap((svc) =>
        svc.endpoints.filter((b) => b.status === 'active').map((b) => `${svc.name}${b.version ? `@${b.version}` : ''}`),
      );
      if (registered.includes('service-b@v1') && registered.includes('service-b@v2')) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(registered).toEqual(expect.arrayContaining(['service-b@v1', 'service-b@v2']));
    const r = meshwork('status');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^SERVICE\s+VERSION\s+ENDPOINT\s+TARGET\s+WEIGHT\s+ROTATION\s+STATUS\s+HEALTH\s+HEARTBEAT$/m,
    );
    expect(r.stdout).toMatch(/^service-b\s+v1\s+SERVICE_B_V1\s+binding SERVICE_B_V1\s+90\s+in\s+active/m);
    expect(r.stdout).toMatch(/^service-b\s+v2\s+SERVICE_B_V2\s+binding SERVICE_B_V2\s+10\s+in\s+active/m);
  });

  it('the admin API refuses calls without a valid token, and nothing changes', async () => {
    const before = await adminStatus();
    const files = [{ name: 'mesh.yaml', text: readFileSync(join(routesWith(HELLO_ROUTE), 'mesh.yaml'), 'utf8') }];
    for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token' }] as Array<Record<string, string>>) {
      const res = await localFetch(`${mesh.url}/_mesh/admin/config`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ files }),
      });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toMatch(/unauthorized|invalid_token/);
    }
    expect(meshwork('status', '--token', 'not-the-token').code).toBe(1);
    const after = await adminStatus();
    expect(after.configVersion).toBe(before.configVersion);
    expect(after.configRevision).toBe(before.configRevision);
    expect(await status('/hello')).toBe(404);
  });

  it('apply: a new route is served without a restart, within the refresh interval; diff shows it first', async () => {
    const dir = routesWith(HELLO_ROUTE);
    const d = meshwork('diff', dir);
    // As kubectl diff: 1 when there are differences.
    expect(d.code).toBe(1);
    expect(d.stdout).toContain('+  - name: hello');
    expect(d.stdout).toContain('routes added: hello');

    const start = Date.now();
    const r = meshwork('apply', dir, '-m', 'add /hello');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/applied config [0-9a-f]{12} as revision \d+/);
    const waited = await until('/hello', 200);
    const total = Date.now() - start;
    // Documented bound locally: refreshInterval (5 s) after the snapshot is published.
    console.log(
      `propagation: apply returned after ${total - waited} ms, /hello served ${waited} ms later (${total} ms in all)`,
    );
    expect(waited).toBeLessThan(7_000);
    const res = await localFetch(`${mesh.url}/hello`);
    expect(await res.json()).toEqual({ service_b: 'Hello from service-b' });
    expect(res.headers.get('x-mesh-config-version')).toBe((await adminStatus()).configVersion);

    // Now the same: diff exits 0, and history has the revision with its message, marked in force.
    const same = meshwork('diff', '-f', dir);
    expect(same.code, same.stdout + same.stderr).toBe(0);
    const history = meshwork('history', '-o', 'json');
    expect(history.code, history.stderr).toBe(0);
    const h = JSON.parse(history.stdout) as { configRevision: number; configs: Array<Record<string, unknown>> };
    const applied = h.configs.find((c) => c.revision === h.configRevision);
    expect(applied).toMatchObject({ message: 'add /hello' });
    expect(meshwork('history').stdout).toMatch(/add \/hello/);
  });

  it('an invalid config is rejected whole with file:line errors, and the live config stays', async () => {
    const before = await adminStatus();
    const dir = routesWith(`
  - name: broken
    matches: [{ path: { exact: /broken } }]
    servce: service-b
`);
    const r = meshwork('apply', dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /mesh\.yaml:\d+:\d+: routes\[\d+\]\.servce: unknown field "servce" \(did you mean "service"\?\)/,
    );
    expect(r.stderr).toContain('nothing was sent');
    // The gateway applies the same validation when it receives files directly.
    const files = [{ name: 'mesh.yaml', text: readFileSync(join(dir, 'mesh.yaml'), 'utf8') }];
    const res = await localFetch(`${mesh.url}/_mesh/admin/config`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ files }),
    });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { errors: Array<{ file: string; line: number; column: number; field: string }> };
    expect(body.errors[0]).toMatchObject({
      file: 'mesh.yaml',
      field: expect.stringMatching(/^routes\[\d+\]\.servce$/),
      line: expect.any(Number),
      column: expect.any(Number),
    });
    const after = await adminStatus();
    expect(after.configVersion).toBe(before.configVersion);
    expect(await status('/hello')).toBe(200);
  });

  it('rollback restores the previous config', async () => {
    const r = meshwork('rollback');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/config back to revision 0/);
    await until('/hello', 404);
    // Without a revision, rollback returns to the config in force before: here it undoes itself.
    expect(meshwork('rollback').stdout).toMatch(/config back to revision [1-9]/);
    expect(meshwork('rollback', '0').stdout).toMatch(/config back to revision 0/);
    expect(meshwork('rollback', '0').stderr).toContain('already in force');
    // --to-bundled is revision 0 by name.
    expect(meshwork('rollback', '1').code).toBe(0);
    const bundled = meshwork('rollback', '--to-bundled');
    expect(bundled.code, bundled.stderr).toBe(0);
    expect(bundled.stdout).toMatch(/config back to revision 0/);
  });

  it('registry state survives a restart of the local runtime (persisted state directory)', async () => {
    expect(meshwork('apply', routesWith(HELLO_ROUTE), '-m', 'before restart').code).toBe(0);
    await until('/hello', 200);
    const before = await adminStatus();
    await mesh.stop();
    mesh = await startMesh({ persistTo });
    // The applied config is served again, and the registry remembers revisions and instances.
    await until('/hello', 200);
    const after = await adminStatus();
    expect(after.configRevision).toBe(before.configRevision);
    expect(after.configVersion).toBe(before.configVersion);
    expect(after.revision).toBeGreaterThanOrEqual(before.revision);
    expect(after.services.find((s) => s.name === 'service-b')!.endpoints.some((b) => b.status !== 'static')).toBe(true);
    const history = meshwork('status');
    expect(history.stdout).toContain(`revision ${before.configRevision}`);
    // meshwork dev says on start that an applied config overrides routes/, and how to drop it.
    const deadline = Date.now() + 30_000;
    while (!mesh.output().includes('rollback --to-bundled') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    expect(mesh.output()).toMatch(/serves config [0-9a-f]{12} \(revision \d+, applied with `meshwork apply`\)/);
    expect(mesh.output()).toContain(`npx meshwork rollback --to-bundled --url ${mesh.url}`);
  });
});
