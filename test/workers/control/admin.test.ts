import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { bundledConfig } from '../../../src/generated/bundle.ts';
import { MeshSource } from '../../../src/registry/source.ts';
import { SNAPSHOT_REVISION_KEY } from '../../../src/registry/types.ts';
import { call, devToken, issuerToken, type Echo } from '../helpers.ts';
import {
  TOKEN,
  adminEnv,
  BASE,
  MESH_YAML,
  registry,
  source,
  files,
  echoRoutes,
  type Json,
  admin,
  apply,
  created,
  keepRegistryClean,
} from './harness.ts';

keepRegistryClean();

describe('admin API', () => {
  it('answers 401 without a valid admin token, and nothing changes', async () => {
    const reg = registry();
    const before = await reg.status();
    const kvBefore = await env.MESH_KV.get(SNAPSHOT_REVISION_KEY);
    const calls: Array<[string, string, unknown]> = [
      ['GET', 'status', undefined],
      ['GET', 'config', undefined],
      ['GET', 'history', undefined],
      ['POST', 'config', { files: files(echoRoutes('regtest-a')) }],
      ['POST', 'diff', { files: files(echoRoutes('regtest-a')) }],
      ['POST', 'rollback', {}],
      ['POST', 'instances', { service: 'service-b', version: 'regtest-401', url: `${env.UPSTREAM_URL}/x` }],
      ['DELETE', `instances/${before.instances[0]?.id ?? 'service-a'}`, undefined],
    ];
    const attempts: Array<[string, Record<string, string>, object]> = [
      ['no token', { authorization: '' }, adminEnv],
      ['a wrong token', { authorization: `Bearer ${'y'.repeat(32)}` }, adminEnv],
      ['the token in another scheme', { authorization: `Basic ${TOKEN}` }, adminEnv],
      ['a token one character off', { authorization: `Bearer ${TOKEN.slice(1)}` }, adminEnv],
      [
        'a user token without admin issuers configured',
        { authorization: `Bearer ${await devToken({ scope: 'mesh:admin' })}` },
        adminEnv,
      ],
      // A gateway whose MESH_ADMIN_TOKEN is too short to be safe accepts no token at all.
      ['the short MESH_ADMIN_TOKEN', { authorization: 'Bearer short' }, { ...env, MESH_ADMIN_TOKEN: 'short' }],
      ['a token, with no MESH_ADMIN_TOKEN set', { authorization: `Bearer ${TOKEN}` }, env],
    ];
    for (const [why, headers, bindings] of attempts) {
      for (const [method, path, body] of calls) {
        const { status, json, res } = await admin(method, path, { body, headers, bindings });
        expect(status, `${method} ${path} with ${why}`).toBe(401);
        expect(json.error.code).toMatch(/^(unauthorized|invalid_token)$/);
        expect(res.headers.get('www-authenticate')).toContain('Bearer');
      }
    }
    const after = await reg.status();
    expect(after.configRevision).toBe(before.configRevision);
    expect(after.configVersion).toBe(before.configVersion);
    expect(after.configs).toEqual(before.configs);
    expect(after.instances.map((i) => i.id).sort()).toEqual(before.instances.map((i) => i.id).sort());
    expect(after.audit.filter((a) => a.actor.startsWith('admin'))).toEqual(
      before.audit.filter((a) => a.actor.startsWith('admin')),
    );
    expect(await env.MESH_KV.get(SNAPSHOT_REVISION_KEY)).toBe(kvBefore);
  });

  it('applies a config: a new revision, GET config returns its files, the gateway serves it', async () => {
    const f = files(echoRoutes('regtest-a'));
    const a = await apply(f);
    expect(a.revision).toBeGreaterThan(0);
    expect(a.version).toMatch(/^[0-9a-f]{12}$/);
    const { json } = await admin('GET', 'config');
    expect(json).toMatchObject({ revision: a.revision, version: a.version, applied: true, files: f });
    expect(json.config.routes.map((r: Json) => r.name)).toContain('regtest-a');
    // The same files again change nothing.
    expect((await admin('POST', 'config', { body: { files: f } })).json).toEqual({
      revision: a.revision,
      version: a.version,
      unchanged: true,
    });
    const res = await call(createGateway({ source: new MeshSource(bundledConfig) }), `${BASE}/regtest-a/x`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mesh-config-version')).toBe(a.version);
  });

  it('rejects an invalid config whole with 422 and file, line, column and field; the live config is unchanged', async () => {
    const a = await apply(files(echoRoutes('regtest-a')));
    const kvBefore = await env.MESH_KV.get(SNAPSHOT_REVISION_KEY);
    const bad = `routes:
  - name: regtest-bad
    matches:
      - path: { prefx: /bad }
    service: service-b
`;
    const { status, json } = await admin('POST', 'config', { body: { files: files(bad) } });
    expect(status).toBe(422);
    expect(json.error).toMatchObject({
      code: 'invalid_config',
      message: expect.stringContaining('nothing was applied'),
    });
    expect(json.errors).toEqual([
      expect.objectContaining({
        file: 'extra.yaml',
        line: 4,
        column: 17,
        field: 'routes[0].matches[0].path.prefx',
        message: expect.stringContaining('prefx'),
      }),
    ]);
    // A YAML error, with its position.
    const yamlError = await admin('POST', 'config', {
      body: {
        files: [
          { name: 'mesh.yaml', text: MESH_YAML },
          { name: 'broken.yaml', text: 'routes:\n  - name: x\n   bad: [\n' },
        ],
      },
    });
    expect(yamlError.status).toBe(422);
    expect(yamlError.json.errors[0]).toMatchObject({
      file: 'broken.yaml',
      line: expect.any(Number),
      column: expect.any(Number),
      message: expect.stringContaining('YAML'),
    });
    // A reference to a service that does not exist.
    const unknown = await admin('POST', 'config', {
      body: {
        files: files(
          'routes:\n  - name: regtest-ghost\n    matches: [{ path: { prefix: /ghost } }]\n    service: ghost\n',
        ),
      },
    });
    expect(unknown.status).toBe(422);
    expect(unknown.json.errors[0]).toMatchObject({ file: 'extra.yaml', line: 4, field: 'routes[0].service' });

    const { json: live } = await admin('GET', 'config');
    expect(live).toMatchObject({ revision: a.revision, version: a.version });
    expect(await env.MESH_KV.get(SNAPSHOT_REVISION_KEY)).toBe(kvBefore);
    // diff validates the same way.
    expect((await admin('POST', 'diff', { body: { files: files(bad) } })).status).toBe(422);
  });

  it('rejects a routed backend binding the gateway does not have, at its place in the files', async () => {
    const extra = `services:
  regtest-unbound:
    backends:
      - binding: NOT_A_GATEWAY_BINDING
routes:
  - name: regtest-unbound
    matches: [{ path: { prefix: /regtest-unbound } }]
    service: regtest-unbound
`;
    const before = (await admin('GET', 'config')).json.revision;
    const { status, json } = await admin('POST', 'config', { body: { files: files(extra) } });
    expect(status).toBe(422);
    expect(json.errors).toEqual([
      expect.objectContaining({
        file: 'extra.yaml',
        line: 4,
        column: 18,
        field: 'services.regtest-unbound.backends[0].binding',
        message: expect.stringContaining('NOT_A_GATEWAY_BINDING'),
      }),
    ]);
    expect((await admin('GET', 'config')).json.revision).toBe(before);
  });

  it('diff shows what an apply would change, and changes nothing', async () => {
    const before = await registry().status();
    const { status, json } = await admin('POST', 'diff', { body: { files: files(echoRoutes('regtest-a')) } });
    expect(status).toBe(200);
    expect(json.from).toBe(bundledConfig.version);
    expect(json.summary.routes).toEqual({ added: ['regtest-a'], removed: [], changed: [] });
    expect(json.summary.services).toEqual({ added: ['regtest-echo'], removed: [], changed: [] });
    expect(json.summary.sections).toEqual(['registry', 'network']);
    expect(json.patch).toContain('+++ b/extra.yaml');
    expect(json.patch).toContain('+  - name: regtest-a');
    const after = await registry().status();
    expect(after.configRevision).toBe(before.configRevision);
    expect(after.configs).toEqual(before.configs);
  });

  it('registers and deregisters an instance: status lists it and the gateway routes to it while registered', async () => {
    await apply(files(echoRoutes('regtest-a')));
    // The shared gateway has not served since: its copy of the config predates regtest-echo,
    // yet the registry's config decides what may be registered.
    expect(source.served.plan.services.has('regtest-echo')).toBe(false);
    const t0 = Date.now();
    const reg = await admin('POST', 'instances', {
      body: {
        service: 'regtest-echo',
        version: 'ext',
        endpoint: 'ext-1',
        url: `${env.UPSTREAM_URL}/ext`,
        weight: 1000,
      },
      headers: { 'x-meshwork-actor': 'ops' },
    });
    expect(reg.status).toBe(201);
    created.add('regtest-echo@ext/ext-1');
    expect(reg.json).toMatchObject({
      id: 'regtest-echo@ext/ext-1',
      service: 'regtest-echo',
      version: 'ext',
      url: `${env.UPSTREAM_URL}/ext`,
      weight: 1000,
      status: 'active',
      source: 'admin',
    });

    const { json } = await admin('GET', 'status');
    expect(json.instances).toEqual(expect.arrayContaining([expect.objectContaining({ id: 'regtest-echo@ext/ext-1' })]));
    expect(json.services.find((s: Json) => s.name === 'regtest-echo').endpoints).toEqual([
      expect.objectContaining({
        version: null,
        target: `url ${env.UPSTREAM_URL}/echo`,
        weight: 1,
        inRotation: true,
        registered: false,
        status: 'static',
      }),
      expect.objectContaining({
        version: 'ext',
        target: `url ${env.UPSTREAM_URL}/ext`,
        weight: 1000,
        inRotation: true,
        registered: true,
        status: 'active',
      }),
    ]);
    const history = (await admin('GET', 'history')).json;
    const entry = history.audit.findLast((e: Json) => e.action === 'register');
    expect(entry).toMatchObject({
      actor: 'admin-token (ops)',
      detail: `regtest-echo@ext/ext-1 registered at ${env.UPSTREAM_URL}/ext`,
    });
    expect(entry.at).toBeGreaterThanOrEqual(t0);

    // Routed to (weight 1000 against the config backend's 1): the URL backend sees /ext/...
    const paths = async () => {
      const gw = createGateway({ source: new MeshSource(bundledConfig) });
      const seen = new Set<string>();
      for (let i = 0; i < 5; i++)
        seen.add(
          new URL(((await (await call(gw, `${BASE}/regtest-a`)).json()) as Echo).url, 'http://x').pathname.split(
            '/',
          )[1]!,
        );
      return seen;
    };
    expect(await paths()).toContain('ext');

    // Bad registrations are refused.
    expect((await admin('POST', 'instances', { body: { service: 'nope', url: `${env.UPSTREAM_URL}/x` } })).status).toBe(
      400,
    );
    expect((await admin('POST', 'instances', { body: { service: 'regtest-echo', url: 'ftp://x' } })).status).toBe(400);
    expect((await admin('POST', 'instances', { body: { service: 'regtest-echo', weight: -1 } })).status).toBe(400);
    const both = await admin('POST', 'instances', {
      body: { service: 'regtest-echo', binding: 'ECHO', url: `${env.UPSTREAM_URL}/x` },
    });
    expect(both).toMatchObject({
      status: 400,
      json: { error: { message: expect.stringContaining('at most one of') } },
    });
    const typo = await admin('POST', 'instances', {
      body: { service: 'regtest-echo', url: `${env.UPSTREAM_URL}/x`, wieght: 2 },
    });
    expect(typo).toMatchObject({ status: 400, json: { error: { message: expect.stringContaining('wieght') } } });
    expect((await registry().status()).instances.filter((i) => i.service === 'regtest-echo').map((i) => i.id)).toEqual([
      'regtest-echo@ext/ext-1',
    ]);

    const del = await admin('DELETE', 'instances/regtest-echo@ext/ext-1');
    expect(del).toMatchObject({ status: 200, json: { removed: 'regtest-echo@ext/ext-1' } });
    created.delete('regtest-echo@ext/ext-1');
    expect((await admin('DELETE', 'instances/regtest-echo@ext/ext-1')).status).toBe(404);
    expect((await admin('GET', 'status')).json.instances.some((i: Json) => i.id === 'regtest-echo@ext/ext-1')).toBe(
      false,
    );
    expect(await paths()).toEqual(new Set(['echo']));
  });

  it('accepts a JWT from an admin issuer holding the admin scope, even in an isolate that has served nothing else (403 without the scope, 401 from another issuer)', async () => {
    await apply(files('admin:\n  issuers: [local-dev]\nregistry:\n  refreshInterval: 0.2s\n'));
    // A new gateway isolate whose only traffic is admin calls.
    const via = createGateway({ source: new MeshSource(bundledConfig) });
    const as = async (token: string) => ({ via, bindings: env, headers: { authorization: `Bearer ${token}` } });
    const admins = { aud: 'meshwork-admin' };
    const ok = await admin(
      'GET',
      'status',
      await as(await devToken({ ...admins, sub: 'ops-alice', scope: 'mesh:admin' })),
    );
    expect(ok.status).toBe(200);
    // The same issuer's user token (audience meshwork), even with the admin scope, is no admin token.
    const userToken = await admin('GET', 'status', await as(await devToken({ sub: 'ops-alice', scope: 'mesh:admin' })));
    expect(userToken.status).toBe(401);
    const noScope = await admin(
      'GET',
      'status',
      await as(await devToken({ ...admins, sub: 'ops-alice', scope: 'read:a' })),
    );
    expect(noScope.status).toBe(403);
    expect(noScope.json.error.code).toBe('insufficient_scope');
    expect(
      (
        await admin(
          'GET',
          'status',
          await as(await issuerToken('RS256', { ...admins, iss: 'https://elsewhere.test', scope: 'mesh:admin' })),
        )
      ).status,
    ).toBe(401);
    expect(
      (
        await admin(
          'GET',
          'status',
          await as(await devToken({ ...admins, scope: 'mesh:admin', exp: Math.floor(Date.now() / 1000) - 3600 })),
        )
      ).status,
    ).toBe(401);

    const back = await admin('POST', 'rollback', {
      body: { revision: 0 },
      ...(await as(await devToken({ ...admins, sub: 'ops-alice', scope: 'mesh:admin' }))),
    });
    expect(back.status).toBe(200);
    const { audit } = (await admin('GET', 'history')).json;
    expect(audit.findLast((e: Json) => e.action === 'rollback')).toMatchObject({
      actor: 'local-dev:ops-alice',
      detail: `config back to revision 0 (${bundledConfig.version})`,
    });
  });
});
