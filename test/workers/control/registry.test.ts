import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { bundledConfig } from '../../../src/generated/bundle.ts';
import { MeshSource } from '../../../src/registry/source.ts';
import { IdentityState } from '../../../src/identity/tokens.ts';
import type { Instance } from '../../../src/registry/types.ts';
import { call, devToken, identityHeaders, memberEnv, DEFAULT_IDENTITY } from '../helpers.ts';
import {
  BASE,
  ACTOR,
  MESH_YAML,
  registry,
  sleep,
  cron,
  gateway,
  files,
  echoRoutes,
  type Json,
  admin,
  apply,
  waitFor,
  servesRevision,
  instance,
  kvSnapshot,
  created,
  EXAMPLES,
  keepRegistryClean,
} from './harness.ts';

keepRegistryClean();

describe('self-registration of wrapped services', () => {
  it('/_mesh/health answers without identity; everything else still needs one', async () => {
    for (const [svc, service, version] of [
      [env.SERVICE_A, 'service-a', undefined],
      [env.SERVICE_B_V1, 'service-b', 'v1'],
      [env.SERVICE_B_V2, 'service-b', 'v2'],
    ] as const) {
      const res = await svc.fetch('https://svc.internal/_mesh/health');
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      // Which service and version answers, and the config it serves (what the gateway's own health says).
      expect(await res.json()).toEqual({
        status: 'ok',
        service,
        ...(version ? { version } : {}),
        config: expect.objectContaining({ version: expect.stringMatching(/^[0-9a-f]{12}$/) }),
        rateLimitStoreFailures: { open: expect.any(Number), closed: expect.any(Number) },
        rejected: { snapshotsRejected: 0, jwksCacheRejected: 0 },
        telemetryLost: { spans: 0, metricFlushes: 0 },
      });
    }
    expect((await env.SERVICE_B_V1.fetch('https://svc.internal/service-b')).status).toBe(401);
    expect((await env.SERVICE_B_V1.fetch('https://svc.internal/_mesh/health', { method: 'POST' })).status).toBe(401);
  });

  it('the example services register themselves: on requests through them, and on their cron', async () => {
    // Requests through the mesh: each service heartbeats on traffic (at most every 30 s per isolate).
    expect((await call(gateway, `${BASE}/service-b`)).status).toBe(200);
    const viaA = await call(gateway, `${BASE}/service-a`, {
      headers: { authorization: `Bearer ${await devToken({ sub: 'regtest-self', scope: 'read:a' })}` },
    });
    expect(await viaA.json()).toMatchObject({ service_a: 'Hello from service-a', service_b: 'Hello from service-b' });
    for (const svc of [env.SERVICE_A, env.SERVICE_B_V1, env.SERVICE_B_V2])
      await (await svc.fetch('https://svc.internal/_mesh/health')).body?.cancel();
    const listed = await waitFor('the example services to be listed', async () => {
      const all = (await registry().status()).instances;
      const mine = EXAMPLES.map((id) => all.find((i) => i.id === id));
      return mine.every(Boolean) && (mine as Instance[]);
    });
    for (const i of listed) expect(i).toMatchObject({ source: 'self', healthPath: '/_mesh/health' });

    // The cron heartbeat registers an idle service at once, whatever its heartbeat interval.
    const reg = registry();
    expect(await reg.deregister('service-b@v2/worker', ACTOR)).toBe(true);
    const t0 = Date.now();
    await cron(env.SERVICE_B_V2);
    const back = await waitFor('service-b v2 to register again', () => instance('service-b@v2/worker'), 3000);
    expect(back).toMatchObject({ service: 'service-b', version: 'v2', status: 'active', source: 'self' });
    expect(back.registeredAt).toBeGreaterThanOrEqual(t0);
    const { json } = await admin('GET', 'status');
    expect(
      json.services.find((s: Json) => s.name === 'service-b').endpoints.find((b: Json) => b.version === 'v2'),
    ).toMatchObject({ registered: true, status: 'active', inRotation: true });
  }, 15_000);
});

describe('registry object', () => {
  it('a heartbeat registers an instance; later heartbeats refresh lastHeartbeat without re-registering', async () => {
    const reg = registry();
    const t0 = Date.now();
    const first = await reg.heartbeat({
      service: 'regtest-hb',
      version: 'v1',
      healthPath: '/healthz',
      metadata: { zone: 'a' },
    });
    created.add('regtest-hb@v1/worker');
    expect(first).toEqual({ id: 'regtest-hb@v1/worker', status: 'active' });
    const i1 = (await instance('regtest-hb@v1/worker'))!;
    expect(i1).toMatchObject({
      service: 'regtest-hb',
      version: 'v1',
      healthPath: '/healthz',
      metadata: { zone: 'a' },
      status: 'active',
      health: 'unknown',
      source: 'self',
    });
    expect(i1.registeredAt).toBeGreaterThanOrEqual(t0);
    expect(i1.lastHeartbeat).toBe(i1.registeredAt);

    await sleep(30);
    await reg.heartbeat({ service: 'regtest-hb', version: 'v1', healthPath: '/healthz' });
    const i2 = (await instance('regtest-hb@v1/worker'))!;
    expect(i2.lastHeartbeat).toBeGreaterThan(i1.lastHeartbeat);
    expect(i2.registeredAt).toBe(i1.registeredAt);
    expect(i2.metadata).toEqual({ zone: 'a' });
    const registrations = (await reg.status()).audit.filter(
      (a) => a.action === 'register' && a.detail.includes('regtest-hb@v1/worker'),
    );
    expect(registrations).toHaveLength(1);
    expect(registrations[0]).toMatchObject({ actor: 'regtest-hb', detail: 'regtest-hb@v1/worker registered itself' });
  });

  it('an instance without a heartbeat for heartbeatTtl expires: listed as expired, out of rotation, active again on its next heartbeat', async () => {
    const reg = registry();
    await apply(files('registry:\n  heartbeatTtl: 1s\n  probeInterval: 1s\n  refreshInterval: 0.2s\n'));
    const t0 = Date.now();
    await reg.heartbeat({ service: 'regtest-exp', version: 'v1' });
    created.add('regtest-exp@v1/worker');
    const expired = await waitFor('expiry', async () => {
      const i = await instance('regtest-exp@v1/worker');
      return i?.status === 'expired' && i;
    });
    const after = Date.now() - t0;
    // Not before the TTL, and within TTL + one alarm period (+ slack for a loaded machine).
    expect(after).toBeGreaterThanOrEqual(1000);
    expect(after).toBeLessThan(1000 + 1000 + 1500);
    expect(expired.lastHeartbeat).toBeLessThan(t0 + 1000);
    const status = await reg.status();
    expect(status.audit.findLast((a) => a.action === 'expire')).toMatchObject({
      actor: 'registry',
      detail: expect.stringContaining('regtest-exp@v1/worker: no heartbeat for'),
    });
    // The admin API's status shows it, out of rotation.
    const { json } = await admin('GET', 'status');
    expect(json.services.find((s: Json) => s.name === 'regtest-exp').endpoints).toEqual([
      expect.objectContaining({ version: 'v1', status: 'expired', inRotation: false, registered: true }),
    ]);
    // ... and so does the published snapshot gateways route by.
    await waitFor(
      'the expiry to be published',
      async () => (await kvSnapshot())?.instances.find((i) => i.id === 'regtest-exp@v1/worker')?.status === 'expired',
    );

    expect(await reg.heartbeat({ service: 'regtest-exp', version: 'v1' })).toEqual({
      id: 'regtest-exp@v1/worker',
      status: 'active',
    });
    const back = (await instance('regtest-exp@v1/worker'))!;
    expect(back.status).toBe('active');
    expect(back.registeredAt).toBe(expired.registeredAt);
    expect((await reg.status()).audit.findLast((a) => a.action === 'register')).toMatchObject({
      actor: 'regtest-exp',
      detail: 'regtest-exp@v1/worker is heartbeating again',
    });
  }, 10_000);

  it('concurrent registrations lose no writes: 30 heartbeats and 50 operator registrations at once', async () => {
    const reg = registry();
    const before = await reg.status();
    // Heartbeats: below the bound on the versions a service may register of itself.
    const h = Array.from({ length: 30 }, (_, i) => i);
    const n = Array.from({ length: 50 }, (_, i) => i);
    for (const i of h) created.add(`regtest-conc@h${i}/worker`);
    for (const i of n) created.add(`regtest-conc@r${i}/worker`);
    const results = await Promise.all([
      ...h.map((i) => reg.heartbeat({ service: 'regtest-conc', version: `h${i}` })),
      ...n.map((i) => reg.register({ service: 'regtest-conc', version: `r${i}`, weight: i }, ACTOR)),
    ]);
    expect(results).toHaveLength(80);
    const after = await reg.status();
    const mine = after.instances.filter((i) => i.service === 'regtest-conc');
    expect(mine.map((i) => i.id).sort()).toEqual(
      [...h.map((i) => `regtest-conc@h${i}/worker`), ...n.map((i) => `regtest-conc@r${i}/worker`)].sort(),
    );
    expect(mine.find((i) => i.id === 'regtest-conc@r49/worker')).toMatchObject({ weight: 49, source: 'admin' });
    // Every registration is a change of its own.
    expect(after.revision).toBeGreaterThanOrEqual(before.revision + 80);
    // Persisted and published as a whole: the snapshot holds all of them.
    await reg.publish();
    expect((await kvSnapshot())!.instances.filter((i) => i.service === 'regtest-conc')).toHaveLength(80);

    // The same instance heartbeating from many isolates at once is one registration.
    await Promise.all(n.map(() => reg.heartbeat({ service: 'regtest-conc', version: 'same' })));
    created.add('regtest-conc@same/worker');
    const status = await reg.status();
    expect(status.instances.filter((i) => i.id === 'regtest-conc@same/worker')).toHaveLength(1);
    expect(
      status.audit.filter((a) => a.action === 'register' && a.detail.startsWith('regtest-conc@same/worker ')),
    ).toHaveLength(1);
  });

  it('health probes take a failing or unreachable instance out of rotation, and a passing probe puts it back', async () => {
    const control = (down: boolean) =>
      fetch(`${env.UPSTREAM_URL}/jwks-control/regtest-health`, { method: 'POST', body: JSON.stringify({ down }) });
    await control(true);
    try {
      // Long TTL: only health is under test. Weight 0: no /service-b traffic goes to these.
      await apply(
        files(
          'registry:\n  heartbeatTtl: 60s\n  probeInterval: 1s\n  refreshInterval: 0.2s\nnetwork:\n  allowLoopbackBackends: true\n',
        ),
      );
      const failing = await admin('POST', 'instances', {
        body: {
          service: 'service-b',
          version: 'regtest-failing',
          endpoint: 'failing',
          url: `${env.UPSTREAM_URL}/jwks/regtest-health`,
          weight: 0,
        },
      });
      expect(failing.status).toBe(201);
      created.add('service-b@regtest-failing/failing');
      const unreachable = await admin('POST', 'instances', {
        body: {
          service: 'service-b',
          version: 'regtest-unreachable',
          endpoint: 'unreachable',
          url: 'http://127.0.0.1:1',
          weight: 0,
        },
      });
      expect(unreachable.status).toBe(201);
      created.add('service-b@regtest-unreachable/unreachable');

      const row = async (version: string) =>
        (await admin('GET', 'status')).json.services
          .find((s: Json) => s.name === 'service-b')
          .endpoints.find((b: Json) => b.version === version);
      await waitFor(
        'both to be probed unhealthy',
        async () =>
          (await row('regtest-failing'))?.health === 'unhealthy' &&
          (await row('regtest-unreachable'))?.health === 'unhealthy',
      );
      expect(await row('regtest-failing')).toMatchObject({ status: 'active', health: 'unhealthy', inRotation: false });
      expect(await row('regtest-unreachable')).toMatchObject({
        status: 'active',
        health: 'unhealthy',
        inRotation: false,
      });
      expect((await instance('service-b@regtest-failing/failing'))!.lastProbe).toMatchObject({
        ok: false,
        detail: 'HTTP 503',
      });
      expect((await instance('service-b@regtest-unreachable/unreachable'))!.lastProbe).toMatchObject({ ok: false });
      const audit = (await registry().status()).audit.filter((a) => a.action === 'health');
      expect(audit).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            actor: 'registry',
            detail: 'service-b@regtest-failing/failing is unhealthy (HTTP 503)',
          }),
        ]),
      );

      await control(false);
      await waitFor(
        'the recovered instance to be probed healthy',
        async () => (await row('regtest-failing'))?.health === 'healthy',
      );
      expect(await row('regtest-failing')).toMatchObject({ health: 'healthy', inRotation: true });
      expect((await instance('service-b@regtest-failing/failing'))!.lastProbe).toMatchObject({
        ok: true,
        detail: 'HTTP 200',
      });
      expect((await row('regtest-unreachable')).health).toBe('unhealthy');
    } finally {
      await control(false);
    }
  }, 15_000);
});

describe('history, audit and rollback', () => {
  it('records who applied or rolled back which revision and version, and when', async () => {
    const t0 = Date.now();
    const a = await apply(files(echoRoutes('regtest-a')), { 'x-meshwork-actor': 'alice' }, 'add regtest-a');
    const b = await apply(files(echoRoutes('regtest-a', 'regtest-b')), { 'x-meshwork-actor': 'bob<script>' });
    expect(b.revision).toBe(a.revision + 1);
    const back = await admin('POST', 'rollback', { body: {}, headers: { 'x-meshwork-actor': 'carol' } });
    expect(back.json).toEqual({ revision: a.revision, version: a.version });

    const { status, json } = await admin('GET', 'history');
    expect(status).toBe(200);
    expect(json.configRevision).toBe(a.revision);
    const byRev = (r: number) => json.configs.find((c: Json) => c.revision === r);
    expect(byRev(a.revision)).toMatchObject({
      version: a.version,
      appliedBy: 'admin-token (alice)',
      message: 'add regtest-a',
    });
    expect(byRev(b.revision)).toMatchObject({ version: b.version, appliedBy: 'admin-token (bobscript)' });
    expect(byRev(a.revision).appliedAt).toBeGreaterThanOrEqual(t0);
    expect(byRev(a.revision).appliedAt).toBeLessThanOrEqual(Date.now());
    const entries = json.audit.filter((e: Json) => e.at >= t0 && (e.action === 'apply' || e.action === 'rollback'));
    expect(entries).toEqual([
      expect.objectContaining({
        action: 'apply',
        actor: 'admin-token (alice)',
        detail: `config revision ${a.revision} (${a.version}): add regtest-a`,
      }),
      expect.objectContaining({
        action: 'apply',
        actor: 'admin-token (bobscript)',
        detail: `config revision ${b.revision} (${b.version})`,
      }),
      expect.objectContaining({
        action: 'rollback',
        actor: 'admin-token (carol)',
        detail: `config back to revision ${a.revision} (${a.version})`,
      }),
    ]);
  });

  it('rolls back to the previous config by default, to a named revision, and to 0 (the bundled routes); the gateway follows', async () => {
    const a = await apply(files(echoRoutes('regtest-a')));
    const b = await apply(files(echoRoutes('regtest-a', 'regtest-b')));
    const s = new MeshSource(bundledConfig);
    const gw = createGateway({ source: s });
    expect((await call(gw, `${BASE}/regtest-b`)).status).toBe(200);

    expect((await admin('POST', 'rollback', { body: {} })).json).toEqual({ revision: a.revision, version: a.version });
    expect((await admin('GET', 'config')).json).toMatchObject({
      revision: a.revision,
      version: a.version,
      applied: true,
    });
    await servesRevision(s, a.revision);
    expect((await call(gw, `${BASE}/regtest-b`)).status).toBe(404);
    expect((await call(gw, `${BASE}/regtest-a`)).status).toBe(200);

    expect((await admin('POST', 'rollback', { body: { revision: b.revision } })).json).toEqual({
      revision: b.revision,
      version: b.version,
    });
    await servesRevision(s, b.revision);
    expect((await call(gw, `${BASE}/regtest-b`)).status).toBe(200);

    expect((await admin('POST', 'rollback', { body: { revision: 0 } })).json).toEqual({
      revision: 0,
      version: bundledConfig.version,
    });
    const config = (await admin('GET', 'config')).json;
    expect(config).toMatchObject({ revision: 0, version: bundledConfig.version, applied: false });
    expect(config.files).toEqual(bundledConfig.sources);
    expect((await servesRevision(s, 0)).plan.version).toBe(bundledConfig.version);
    expect((await call(gw, `${BASE}/regtest-a`)).status).toBe(404);
  });

  it('a rollback without a revision returns to the config in force before, like an undo', async () => {
    const a = await apply(files(echoRoutes('regtest-undo-a')));
    const b = await apply(files(echoRoutes('regtest-undo-b')));
    expect((await admin('POST', 'rollback', { body: {} })).json).toMatchObject({ revision: a.revision });
    // Undoing the rollback: back to b.
    expect((await admin('POST', 'rollback', { body: {} })).json).toMatchObject({ revision: b.revision });
  });

  it('rolls back by config version as well as by revision', async () => {
    const a = await apply(files(echoRoutes('regtest-byver-a')));
    await apply(files(echoRoutes('regtest-byver-b')));
    expect((await admin('POST', 'rollback', { body: { version: a.version } })).json).toMatchObject({
      revision: a.revision,
      version: a.version,
    });
    expect((await admin('POST', 'rollback', { body: { version: 'ffffffffffff' } })).status).toBe(409);
  });

  it('services reach the registry only through the heartbeat entrypoint, and only as themselves', async () => {
    const mint = async (member: string) => {
      const minter = new IdentityState(DEFAULT_IDENTITY).minter;
      return minter.identityFor('meshwork-registry', memberEnv(member));
    };
    // service-c speaking for service-a, a token for another audience, and no token: refused.
    expect(await env.MESH_HEARTBEAT.heartbeat(await mint('service-c'), { service: 'service-a' })).toEqual({
      ok: false,
      error: expect.stringMatching(/cannot speak for service-a/),
    });
    const wrongAud = (await identityHeaders('service-c', 'service-b'))['x-mesh-identity']!;
    expect(await env.MESH_HEARTBEAT.heartbeat(wrongAud, { service: 'service-c' })).toEqual({
      ok: false,
      error: expect.stringMatching(/refused/),
    });
    expect(await env.MESH_HEARTBEAT.heartbeat('garbage', { service: 'service-c' })).toEqual({
      ok: false,
      error: expect.stringMatching(/refused/),
    });
    // A version label that is not one (it would make the record's key ambiguous) is refused.
    expect(
      await env.MESH_HEARTBEAT.heartbeat(await mint('service-c'), { service: 'service-c', version: 'v1/x@y' }),
    ).toEqual({
      ok: false,
      error: expect.stringMatching(/is not a version label/),
    });
    // A genuine heartbeat registers the service, but cannot point traffic anywhere.
    const info = {
      service: 'service-c',
      version: 'hb',
      url: 'https://attacker.example',
      binding: 'SERVICE_A',
      weight: 1e6,
    } as never;
    expect(await env.MESH_HEARTBEAT.heartbeat(await mint('service-c'), info)).toMatchObject({
      ok: true,
      id: 'service-c@hb/worker',
      status: 'active',
    });
    created.add('service-c@hb/worker');
    const inst = (await registry().status()).instances.find((i) => i.id === 'service-c@hb/worker')!;
    expect(inst).not.toHaveProperty('url');
    expect(inst).not.toHaveProperty('binding');
    expect(inst).not.toHaveProperty('weight');
  });

  it('refuses a rollback it cannot do: 409 for an unknown revision or the one in force; 400 for a bad revision; nothing changes', async () => {
    const before = await registry().status();
    expect(before.configRevision).toBe(0);
    const refused = async (body: unknown, status: number, code: string, message: RegExp) => {
      const r = await admin('POST', 'rollback', { body });
      expect(r.status).toBe(status);
      expect(r.json.error).toMatchObject({ code, message: expect.stringMatching(message) });
    };
    await refused({ revision: 0 }, 409, 'rollback_refused', /already in force/);
    await refused({ revision: 987654 }, 409, 'rollback_refused', /not in the history/);
    for (const revision of [-1, 1.5, '1', null]) await refused({ revision }, 400, 'bad_request', /revision/);
    const after = await registry().status();
    expect(after.configRevision).toBe(0);
    expect(after.configs).toEqual(before.configs);
    expect(after.audit.filter((a) => a.action === 'rollback')).toEqual(
      before.audit.filter((a) => a.action === 'rollback'),
    );
  });
});

describe('rotation follows heartbeats', () => {
  it('a version that stops heartbeating leaves rotation: /service-b traffic shifts to the one still heartbeating, and back on its next heartbeat', async () => {
    const reg = registry();
    // The example workers heartbeat as service-b@v1 / @v2 on every request they get, so while
    // a stale snapshot still sends one traffic it comes right back. Here the deployments are
    // labelled blue (the v1 worker) and green (the v2 worker) and the test plays their
    // heartbeats: green stopping is a deployment gone quiet. 50/50, a 1 s TTL.
    const text = MESH_YAML.replace('version: v1\n        weight: 90', 'version: blue\n        weight: 50').replace(
      'version: v2\n        weight: 10',
      'version: green\n        weight: 50',
    );
    expect(text.match(/version: (blue|green)/g)).toEqual(['version: blue', 'version: green']);
    await apply(files('registry:\n  heartbeatTtl: 1s\n  probeInterval: 1s\n  refreshInterval: 0.2s\n', text));
    created.add('service-b@blue/worker').add('service-b@green/worker');
    const beat = (version: string) => reg.heartbeat({ service: 'service-b', version, healthPath: '/_mesh/health' });
    await Promise.all([beat('blue'), beat('green')]);
    const t0 = Date.now(); // green's last heartbeat
    const keepalive = setInterval(() => void beat('blue'), 200);
    try {
      const gsrc = new MeshSource(bundledConfig);
      const gw = createGateway({ source: gsrc });
      // x-service-version: what the worker that answered says it is (blue = v1, green = v2).
      const versions = async (n: number) => {
        const seen: Record<string, number> = {};
        for (let i = 0; i < n; i++) {
          const res = await call(gw, `${BASE}/service-b`);
          expect(res.status).toBe(200);
          const v = res.headers.get('x-service-version')!;
          seen[v] = (seen[v] ?? 0) + 1;
        }
        return seen;
      };
      expect(Object.keys(await versions(30)).sort()).toEqual(['v1', 'v2']);

      await waitFor(
        'green to expire',
        async () => (await instance('service-b@green/worker'))?.status === 'expired',
        6000,
      );
      const expiredAfter = Date.now() - t0;
      const rows = (await admin('GET', 'status')).json.services.find((s: Json) => s.name === 'service-b').endpoints;
      expect(rows.find((b: Json) => b.version === 'green')).toMatchObject({ status: 'expired', inRotation: false });
      expect(rows.find((b: Json) => b.version === 'blue')).toMatchObject({ status: 'active', inRotation: true });

      // Published within the 1 s coalescing window, then served from the next refresh on.
      const t1 = Date.now();
      const published = await waitFor(
        'the expiry to be published',
        async () => {
          const snap = await kvSnapshot();
          return snap?.instances.find((i) => i.id === 'service-b@green/worker')?.status === 'expired' && snap;
        },
        3000,
        20,
      );
      const publishedAfter = Date.now() - t1;
      await waitFor(
        'the gateway to serve it',
        async () => {
          await (await call(gw, `${BASE}/service-b`)).body?.cancel();
          return gsrc.served.revision >= published.revision;
        },
        3000,
        20,
      );
      const servedAfter = Date.now() - t1;
      expect(await versions(40)).toEqual({ v1: 40 });
      console.log(
        `rotation: green expired ${expiredAfter} ms after its last heartbeat; published ${publishedAfter} ms and served by the gateway ${servedAfter} ms after that`,
      );

      expect(await beat('green')).toEqual({ id: 'service-b@green/worker', status: 'active' });
      await waitFor('traffic to reach green again', async () => (await versions(10)).v2 !== undefined, 5000, 0);
    } finally {
      clearInterval(keepalive);
    }
  }, 20_000);
});
