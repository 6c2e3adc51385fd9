/**
 * What the admin API does with bad input: every body checked before anything happens, a clear
 * error, nothing changed; configs that would hurt the mesh (internal backend addresses, a config
 * that removes everything) refused with the reason.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import {
  admin,
  apply,
  created,
  echoRoutes,
  files,
  keepRegistryClean,
  MESH_YAML,
  registry,
  type Json,
} from './harness.ts';

keepRegistryClean();

/** The registry's state that any accepted call would change. */
async function fingerprint(): Promise<string> {
  const s = await registry().status();
  return JSON.stringify([s.revision, s.configRevision, s.instances.map((i) => i.id).sort()]);
}

describe('admin request bodies', () => {
  it('are refused with 400 naming what is wrong, and change nothing', async () => {
    await apply(files(echoRoutes('regtest-a')));
    const before = await fingerprint();
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['POST', 'rollback', null, /expected/],
      ['POST', 'rollback', [], /expected/],
      ['POST', 'rollback', { revison: 0 }, /revison|expected/],
      ['POST', 'rollback', { version: 5 }, /expected/],
      ['POST', 'rollback', { revision: -1 }, /expected/],
      ['POST', 'config', { files: [] }, /files/],
      ['POST', 'config', { files: [{ name: 'a.yaml', text: 'x' }], mesage: 'typo' }, /mesage/],
      ['POST', 'diff', null, /expected/],
      ['POST', 'instances', { service: 'regtest-echo', url: 'http://bad host/' }, /url/],
      [
        'POST',
        'instances',
        { service: 'regtest-echo', url: `${env.UPSTREAM_URL}/x`, healthPath: `//127.0.0.1:1/x` },
        /healthPath/,
      ],
      [
        'POST',
        'instances',
        { service: 'regtest-echo', url: `${env.UPSTREAM_URL}/x`, healthPath: '///127.0.0.1:1/x' },
        /healthPath/,
      ],
      ['POST', 'instances', { service: 'regtest-echo', version: 'v1/../x', url: `${env.UPSTREAM_URL}/x` }, /version/],
    ];
    for (const [method, path, body, message] of cases) {
      const r = await admin(method, path, { body });
      expect(r.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(r.json.error.code).toBe('bad_request');
      expect(r.json.error.message, `${path} ${JSON.stringify(body)}`).toMatch(message);
    }
    const notJson = await admin('POST', 'rollback', {
      body: undefined,
      headers: { 'content-type': 'application/json' },
    });
    expect(notJson.status).toBe(400);
    expect(await fingerprint()).toBe(before);
  });

  it('a YAML alias bomb is an invalid config (422), not a crash', async () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      levels.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${prev}`).join(', ')}]`,
      );
    }
    const before = await fingerprint();
    const r = await admin('POST', 'config', { body: { files: [{ name: 'bomb.yaml', text: levels.join('\n') }] } });
    expect(r.status).toBe(422);
    expect(r.json.errors[0]).toMatchObject({ file: 'bomb.yaml', message: expect.stringMatching(/^YAML: .*alias/i) });
    expect(await fingerprint()).toBe(before);
  });
});

describe('backend addresses', () => {
  const withBackend = (url: string, network = '') => `services:
  regtest-addr:
    backends: [{ url: "${url}" }]
routes:
  - { name: regtest-addr, matches: [{ path: { prefix: /regtest-addr } }], service: regtest-addr }
${network}`;

  it('metadata and link-local addresses are never backends; private and loopback ones only when the config allows them', async () => {
    const refused = async (text: string, reason: RegExp) => {
      const r = await admin('POST', 'config', { body: { files: files(text) } });
      expect(r.status, text).toBe(422);
      expect(r.json.errors[0]).toMatchObject({
        field: 'services.regtest-addr.backends[0].url',
        message: expect.stringMatching(reason),
      });
    };
    const all = 'network:\n  allowPrivateBackends: true\n  allowLoopbackBackends: true\n';
    await refused(withBackend('http://169.254.169.254/latest/meta-data', all), /cloud metadata service: never/);
    await refused(withBackend('http://metadata.google.internal/', all), /cloud metadata service: never/);
    await refused(withBackend('http://[fe80::1]/', all), /link-local address: never/);
    await refused(withBackend('http://10.1.2.3/'), /private address: set network.allowPrivateBackends/);
    await refused(withBackend('http://[fd12::1]/'), /private address/);
    await refused(withBackend('http://127.0.0.1:9/'), /this machine: set network.allowLoopbackBackends/);
    await refused(withBackend('http://0.0.0.0/'), /this machine/);
    await refused(withBackend('http://localhost/'), /this machine/);
    await refused(withBackend('http://0x7f.1/'), /this machine/);
    expect(
      (
        await admin('POST', 'config', {
          body: { files: files(withBackend('http://10.1.2.3/', 'network:\n  allowPrivateBackends: true\n')) },
        })
      ).status,
    ).toBe(200);
  });

  it('the same rules hold for registered endpoints, with the config in force', async () => {
    await apply(files(echoRoutes('regtest-a')));
    for (const url of ['http://169.254.169.254/', 'http://10.0.0.1/']) {
      const r = await admin('POST', 'instances', { body: { service: 'regtest-echo', version: 'x', url } });
      expect(r.status, url).toBe(400);
      expect(r.json.error.message).toMatch(/^"url": /);
    }
    // Loopback is allowed by the applied config (echoRoutes): the test backend itself.
    const ok = await admin('POST', 'instances', {
      body: { service: 'regtest-echo', version: 'lo', endpoint: 'lo', url: `${env.UPSTREAM_URL}/x` },
    });
    expect(ok.status).toBe(201);
    created.add('regtest-echo@lo/lo');
  });
});

describe('a config that would remove everything', () => {
  it('is refused, naming what would go, unless the apply says force', async () => {
    const before = await fingerprint();
    const r = await admin('POST', 'config', { body: { files: [{ name: 'mesh.yaml', text: '' }] } });
    expect(r.status).toBe(409);
    expect(r.json.error).toMatchObject({ code: 'would_remove_everything' });
    expect(r.json.error.message).toMatch(
      /every route: service-a, service-b; and every service: service-a, service-b\. Nothing was applied/,
    );
    expect(await fingerprint()).toBe(before);
    const truncated = await admin('POST', 'config', {
      body: { files: [{ name: 'mesh.yaml', text: MESH_YAML.slice(0, MESH_YAML.indexOf('routes:')) }] },
    });
    expect(truncated.status).toBe(409);
    expect(truncated.json.error.message).toMatch(/every route/);
    const forced = await admin('POST', 'config', { body: { files: [{ name: 'mesh.yaml', text: '' }], force: true } });
    expect(forced.status).toBe(200);
    expect((forced.json as Json).unchanged).toBe(false);
  });
});
