/**
 * The service registry and control plane inside workerd: the real MeshRegistry Durable Object
 * (hosted by the gateway bundle, as in production), the KV namespace every worker shares, a
 * gateway built on a MeshSource with its admin API, and the example services as real workers
 * that heartbeat to the registry and read their config from its snapshots.
 *
 * The registry and KV are shared with every other test file (one file runs at a time): each
 * test leaves them as it found them (config back at revision 0, the bundled routes; its own
 * instances deregistered; the snapshot republished).
 */
import { env } from 'cloudflare:test';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createGateway } from '../../src/gateway/app.ts';
import { bundledConfig } from '../../src/generated/bundle.ts';
import { MeshSource, type ServedMesh } from '../../src/registry/source.ts';
import { MeshKeys } from '../../src/identity/keys.ts';
import { IdentityMinter } from '../../src/identity/tokens.ts';
import {
  REGISTRY_NAME,
  SNAPSHOT_KEY,
  SNAPSHOT_REVISION_KEY,
  type Instance,
  type Snapshot,
} from '../../src/registry/types.ts';
import { call, devToken, identityHeaders, issuerToken, memberEnv, type Echo } from './helpers.ts';

const TOKEN = 'x'.repeat(32);
const adminEnv = { ...env, MESH_ADMIN_TOKEN: TOKEN };
const BASE = 'https://gw.example.com';
const ACTOR = 'registry-test';
const MESH_YAML = bundledConfig.sources![0]!.text;

const registry = () => env.MESH_REGISTRY.get(env.MESH_REGISTRY.idFromName(REGISTRY_NAME));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Runs a worker's cron handler over its service binding, as the cron trigger would. */
const cron = (svc: Fetcher) =>
  (svc as unknown as { scheduled(o: { cron: string }): Promise<unknown> }).scheduled({ cron: '* * * * *' });

/** A gateway as deployed: bundled routes/ overlaid by the registry's snapshots from KV. */
const source = new MeshSource(bundledConfig);
const gateway = createGateway({ source });

type Files = Array<{ name: string; text: string }>;

/** The bundled mesh.yaml (or `base`), plus an extra routes file when given. */
function files(extra?: string, base = MESH_YAML): Files {
  return [{ name: 'mesh.yaml', text: base }, ...(extra ? [{ name: 'extra.yaml', text: extra }] : [])];
}

/** A service at the test's URL backend and a route to it, plus a short refresh interval. */
function echoRoutes(...names: string[]): string {
  return `services:
  regtest-echo:
    backends:
      - url: "${env.UPSTREAM_URL}/echo"
routes:
${names.map((n) => `  - name: ${n}\n    matches: [{ path: { prefix: /${n} } }]\n    service: regtest-echo\n`).join('')}registry:
  refreshInterval: 0.2s
`;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

interface AdminCall {
  body?: unknown;
  headers?: Record<string, string>;
  /** The gateway's env (default: the test env plus MESH_ADMIN_TOKEN). */
  bindings?: object;
  /** Default: the shared gateway. */
  via?: { fetch(request: Request, env: never, ctx: ExecutionContext): Response | Promise<Response> };
}

async function admin(
  method: string,
  path: string,
  { body, headers = {}, bindings = adminEnv, via = gateway }: AdminCall = {},
): Promise<{ status: number; json: Json; res: Response }> {
  const res = await call(
    via,
    `${BASE}/_mesh/admin/${path}`,
    {
      method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    },
    bindings,
  );
  return { status: res.status, json: await res.json(), res };
}

async function apply(
  f: Files,
  headers: Record<string, string> = {},
  message?: string,
): Promise<{ revision: number; version: string }> {
  const { status, json } = await admin('POST', 'config', {
    body: { files: f, ...(message ? { message } : {}) },
    headers,
  });
  expect(status, JSON.stringify(json)).toBe(200);
  expect(json.unchanged).toBe(false);
  return json;
}

/** Polls until `check` returns something truthy. */
async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false>,
  timeoutMs = 8000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** One request's worth of MeshSource.get, with its background refresh awaited. */
async function served(s: MeshSource, bindings = env as unknown as Record<string, unknown>): Promise<ServedMesh> {
  const pending: Array<Promise<unknown>> = [];
  await s.get(bindings, (p) => pending.push(p));
  await Promise.all(pending);
  return s.served;
}

/** Waits until `s` serves config revision `revision`. */
function servesRevision(s: MeshSource, revision: number): Promise<ServedMesh> {
  return waitFor(`config revision ${revision} to be served`, async () => {
    const m = await served(s);
    return m.configRevision === revision && m;
  });
}

async function instance(id: string): Promise<Instance | undefined> {
  return (await registry().status()).instances.find((i) => i.id === id) as Instance | undefined;
}

async function kvSnapshot(): Promise<Snapshot | null> {
  return env.MESH_KV.get<Snapshot>(SNAPSHOT_KEY, 'json');
}

/** Instances this file registered, deregistered after each test. */
const created = new Set<string>();

async function restore(): Promise<void> {
  const reg = registry();
  for (const id of created) await reg.deregister(id, ACTOR);
  created.clear();
  // A tiny TTL may have expired the example services' own registrations: out of rotation,
  // they would not come back without traffic. Unregistered, their config backends are static.
  // (Before the rollback: no snapshot of the bundled routes, 5 s refresh, has them out of rotation.)
  for (const i of (await reg.status()).instances)
    if (i.status !== 'active' || i.health === 'unhealthy') await reg.deregister(i.id, ACTOR);
  if ((await reg.status()).configRevision !== 0) expect(await reg.rollback(0, ACTOR)).toMatchObject({ revision: 0 });
  await reg.publish();
}

const EXAMPLES = ['service-a', 'service-b@v1', 'service-b@v2'];
/** The example services' registrations when this file started (they may be expired and dropped meanwhile). */
let initialIds: string[] = [];

beforeAll(async () => {
  await restore();
  initialIds = (await registry().status()).instances.map((i) => i.id).filter((id) => EXAMPLES.includes(id));
  // The shared gateway's first request loads the snapshot.
  await servesRevision(source, 0);
});

afterEach(restore);

afterAll(async () => {
  await restore();
  // The example services re-register now rather than on their next heartbeat, and read the
  // final snapshot (the first request after their refresh interval starts the refresh).
  await Promise.all([env.SERVICE_A, env.SERVICE_B_V1, env.SERVICE_B_V2].map(cron));
  const ping = () =>
    Promise.all(
      [env.SERVICE_A, env.SERVICE_B_V1, env.SERVICE_B_V2].map(async (s) =>
        (await s.fetch('https://svc/_mesh/health')).body?.cancel(),
      ),
    );
  await sleep(250);
  await ping();
  await sleep(100);
  await ping();
  await waitFor('the example services to be registered again', async () => {
    const ids = (await registry().status()).instances.map((i) => i.id);
    return initialIds.every((id) => ids.includes(id));
  });
});

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
      expect(await res.json()).toEqual({ status: 'ok', service, ...(version ? { version } : {}) });
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
    expect(await reg.deregister('service-b@v2', ACTOR)).toBe(true);
    const t0 = Date.now();
    await cron(env.SERVICE_B_V2);
    const back = await waitFor('service-b v2 to register again', () => instance('service-b@v2'), 3000);
    expect(back).toMatchObject({ service: 'service-b', version: 'v2', status: 'active', source: 'self' });
    expect(back.registeredAt).toBeGreaterThanOrEqual(t0);
    const { json } = await admin('GET', 'status');
    expect(
      json.services.find((s: Json) => s.name === 'service-b').backends.find((b: Json) => b.version === 'v2'),
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
    created.add('regtest-hb@v1');
    expect(first).toEqual({ id: 'regtest-hb@v1', status: 'active' });
    const i1 = (await instance('regtest-hb@v1'))!;
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
    const i2 = (await instance('regtest-hb@v1'))!;
    expect(i2.lastHeartbeat).toBeGreaterThan(i1.lastHeartbeat);
    expect(i2.registeredAt).toBe(i1.registeredAt);
    expect(i2.metadata).toEqual({ zone: 'a' });
    const registrations = (await reg.status()).audit.filter(
      (a) => a.action === 'register' && a.detail.includes('regtest-hb@v1'),
    );
    expect(registrations).toHaveLength(1);
    expect(registrations[0]).toMatchObject({ actor: 'regtest-hb', detail: 'regtest-hb@v1 registered itself' });
  });

  it('an instance without a heartbeat for heartbeatTtl expires: listed as expired, out of rotation, active again on its next heartbeat', async () => {
    const reg = registry();
    await apply(files('registry:\n  heartbeatTtl: 1s\n  probeInterval: 1s\n  refreshInterval: 0.2s\n'));
    const t0 = Date.now();
    await reg.heartbeat({ service: 'regtest-exp', version: 'v1' });
    created.add('regtest-exp@v1');
    const expired = await waitFor('expiry', async () => {
      const i = await instance('regtest-exp@v1');
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
      detail: expect.stringContaining('regtest-exp@v1: no heartbeat for'),
    });
    // The admin API's status shows it, out of rotation.
    const { json } = await admin('GET', 'status');
    expect(json.services.find((s: Json) => s.name === 'regtest-exp').backends).toEqual([
      expect.objectContaining({ version: 'v1', status: 'expired', inRotation: false, registered: true }),
    ]);
    // ... and so does the published snapshot gateways route by.
    await waitFor(
      'the expiry to be published',
      async () => (await kvSnapshot())?.instances.find((i) => i.id === 'regtest-exp@v1')?.status === 'expired',
    );

    expect(await reg.heartbeat({ service: 'regtest-exp', version: 'v1' })).toEqual({
      id: 'regtest-exp@v1',
      status: 'active',
    });
    const back = (await instance('regtest-exp@v1'))!;
    expect(back.status).toBe('active');
    expect(back.registeredAt).toBe(expired.registeredAt);
    expect((await reg.status()).audit.findLast((a) => a.action === 'register')).toMatchObject({
      actor: 'regtest-exp',
      detail: 'regtest-exp@v1 is heartbeating again',
    });
  }, 10_000);

  it('concurrent registrations lose no writes: 50 heartbeats and 50 operator registrations at once', async () => {
    const reg = registry();
    const before = await reg.status();
    const n = Array.from({ length: 50 }, (_, i) => i);
    for (const i of n) created.add(`regtest-conc@h${i}`).add(`regtest-conc@r${i}`);
    const results = await Promise.all([
      ...n.map((i) => reg.heartbeat({ service: 'regtest-conc', version: `h${i}` })),
      ...n.map((i) => reg.register({ service: 'regtest-conc', version: `r${i}`, weight: i }, ACTOR)),
    ]);
    expect(results).toHaveLength(100);
    const after = await reg.status();
    const mine = after.instances.filter((i) => i.service === 'regtest-conc');
    expect(mine.map((i) => i.id).sort()).toEqual(
      [...n.map((i) => `regtest-conc@h${i}`), ...n.map((i) => `regtest-conc@r${i}`)].sort(),
    );
    expect(mine.find((i) => i.id === 'regtest-conc@r49')).toMatchObject({ weight: 49, source: 'admin' });
    // Every registration is a change of its own.
    expect(after.revision).toBeGreaterThanOrEqual(before.revision + 100);
    // Persisted and published as a whole: the snapshot holds all of them.
    await reg.publish();
    expect((await kvSnapshot())!.instances.filter((i) => i.service === 'regtest-conc')).toHaveLength(100);

    // The same instance heartbeating from many isolates at once is one registration.
    await Promise.all(n.map(() => reg.heartbeat({ service: 'regtest-conc', version: 'same' })));
    created.add('regtest-conc@same');
    const status = await reg.status();
    expect(status.instances.filter((i) => i.id === 'regtest-conc@same')).toHaveLength(1);
    expect(
      status.audit.filter((a) => a.action === 'register' && a.detail.startsWith('regtest-conc@same ')),
    ).toHaveLength(1);
  });

  it('health probes take a failing or unreachable instance out of rotation, and a passing probe puts it back', async () => {
    const control = (down: boolean) =>
      fetch(`${env.UPSTREAM_URL}/jwks-control/regtest-health`, { method: 'POST', body: JSON.stringify({ down }) });
    await control(true);
    try {
      // Long TTL: only health is under test. Weight 0: no /service-b traffic goes to these.
      await apply(files('registry:\n  heartbeatTtl: 60s\n  probeInterval: 1s\n  refreshInterval: 0.2s\n'));
      const failing = await admin('POST', 'instances', {
        body: {
          service: 'service-b',
          version: 'regtest-failing',
          url: `${env.UPSTREAM_URL}/jwks/regtest-health`,
          weight: 0,
        },
      });
      expect(failing.status).toBe(201);
      created.add('service-b@regtest-failing');
      const unreachable = await admin('POST', 'instances', {
        body: { service: 'service-b', version: 'regtest-unreachable', url: 'http://127.0.0.1:1', weight: 0 },
      });
      expect(unreachable.status).toBe(201);
      created.add('service-b@regtest-unreachable');

      const row = async (version: string) =>
        (await admin('GET', 'status')).json.services
          .find((s: Json) => s.name === 'service-b')
          .backends.find((b: Json) => b.version === version);
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
      expect((await instance('service-b@regtest-failing'))!.lastProbe).toMatchObject({ ok: false, detail: 'HTTP 503' });
      expect((await instance('service-b@regtest-unreachable'))!.lastProbe).toMatchObject({ ok: false });
      const audit = (await registry().status()).audit.filter((a) => a.action === 'health');
      expect(audit).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ actor: 'registry', detail: 'service-b@regtest-failing is unhealthy (HTTP 503)' }),
        ]),
      );

      await control(false);
      await waitFor(
        'the recovered instance to be probed healthy',
        async () => (await row('regtest-failing'))?.health === 'healthy',
      );
      expect(await row('regtest-failing')).toMatchObject({ health: 'healthy', inRotation: true });
      expect((await instance('service-b@regtest-failing'))!.lastProbe).toMatchObject({ ok: true, detail: 'HTTP 200' });
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
    expect((await servesRevision(s, 0)).mesh.version).toBe(bundledConfig.version);
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
      const minter = new IdentityMinter(new MeshKeys(undefined), 60);
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
      id: 'service-c@hb',
      status: 'active',
    });
    created.add('service-c@hb');
    const inst = (await registry().status()).instances.find((i) => i.id === 'service-c@hb')!;
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

describe('KV read path', () => {
  it('every change is published to KV: admin changes before the call returns, heartbeats within the 1 s coalescing window', async () => {
    const reg = registry();
    const a = await apply(files(echoRoutes('regtest-a')));
    const afterApply = await reg.status();
    expect(await env.MESH_KV.get(SNAPSHOT_REVISION_KEY)).toBe(`${afterApply.epoch}:${afterApply.revision}`);
    expect(await kvSnapshot()).toMatchObject({
      revision: afterApply.revision,
      configRevision: a.revision,
      bundle: { version: a.version },
    });

    const t0 = Date.now();
    await reg.heartbeat({ service: 'regtest-pub', version: 'v1' });
    created.add('regtest-pub@v1');
    const snap = await waitFor(
      'the heartbeat to be published',
      async () => {
        const s = await kvSnapshot();
        return s?.instances.some((i) => i.id === 'regtest-pub@v1') && s;
      },
      3000,
      20,
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    // The revision key is written after the snapshot: whoever sees it finds the snapshot.
    expect(Number((await env.MESH_KV.get(SNAPSHOT_REVISION_KEY))!.split(':')[1])).toBeGreaterThanOrEqual(snap.revision);
    expect(snap.configRevision).toBe(a.revision);

    expect((await admin('DELETE', 'instances/regtest-pub@v1')).status).toBe(200);
    created.delete('regtest-pub@v1');
    expect((await kvSnapshot())!.instances.some((i) => i.id === 'regtest-pub@v1')).toBe(false);
  });

  it('a running gateway serves an applied config within refreshInterval, without a restart', async () => {
    const a = await apply(files(echoRoutes('regtest-a')));
    const s = new MeshSource(bundledConfig);
    const gw = createGateway({ source: s });
    expect((await call(gw, `${BASE}/regtest-a`)).headers.get('x-mesh-config-version')).toBe(a.version);
    expect((await call(gw, `${BASE}/regtest-b`)).status).toBe(404);

    const t0 = Date.now();
    const b = await apply(files(echoRoutes('regtest-a', 'regtest-b')));
    const applied = Date.now();
    let res: Response;
    for (;;) {
      res = await call(gw, `${BASE}/regtest-b`);
      if (res.status !== 404 || Date.now() - applied > 3000) break;
      await sleep(10);
    }
    const propagation = Date.now() - applied;
    console.log(
      `propagation: apply took ${applied - t0} ms; served ${propagation} ms after the apply returned (refreshInterval 200 ms)`,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mesh-config-version')).toBe(b.version);
    expect(((await res.json()) as Echo).name).toBe('url-backend');
    // Bound: the refresh interval (200 ms) plus a request or two.
    expect(propagation).toBeLessThan(200 + 500);
  });

  it('with nothing in KV a new isolate serves the bundled routes (the floor); once published, the applied config', async () => {
    const a = await apply(files(echoRoutes('regtest-a')));
    await env.MESH_KV.delete(SNAPSHOT_REVISION_KEY);
    await env.MESH_KV.delete(SNAPSHOT_KEY);
    try {
      const fresh = new MeshSource(bundledConfig);
      const m = await served(fresh);
      expect(m.revision).toBe(-1);
      expect(m.configRevision).toBe(0);
      expect(m.mesh.version).toBe(bundledConfig.version);
      expect(m.mesh.router.size).toBe(bundledConfig.config.routes.length);
    } finally {
      await registry().publish();
    }
    const fresh = new MeshSource(bundledConfig);
    const m = await served(fresh);
    expect(m.configRevision).toBe(a.revision);
    expect(m.mesh.version).toBe(a.version);
  });

  it('when KV is unbound or its reads fail, the last snapshot keeps serving', async () => {
    const a = await apply(files(echoRoutes('regtest-a')));
    const s = new MeshSource(bundledConfig);
    const gw = createGateway({ source: s });
    const loaded = await served(s);
    expect(loaded.configRevision).toBe(a.revision);

    // Unbound.
    const { MESH_KV: _kv, ...noKv } = env as unknown as Record<string, unknown>;
    const res = await call(gw, `${BASE}/regtest-a`, undefined, noKv);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mesh-config-version')).toBe(a.version);

    // Reads that fail: a newer revision whose snapshot does not parse, then one that does not compile.
    const real = await env.MESH_KV.get(SNAPSHOT_REVISION_KEY);
    try {
      for (const bad of [
        '{ not json',
        JSON.stringify({ revision: 1e9, configRevision: 999, bundle: { version: 'broken' }, instances: [] }),
      ]) {
        await env.MESH_KV.put(SNAPSHOT_KEY, bad);
        await env.MESH_KV.put(SNAPSHOT_REVISION_KEY, String(1e9));
        await sleep(250);
        const r1 = await call(gw, `${BASE}/regtest-a`); // starts a refresh, which fails
        const r2 = await call(gw, `${BASE}/regtest-a`);
        for (const r of [r1, r2]) {
          expect(r.status).toBe(200);
          expect(r.headers.get('x-mesh-config-version')).toBe(a.version);
        }
        expect(s.served.revision).toBe(loaded.revision);
        expect(s.served.configRevision).toBe(a.revision);
      }
    } finally {
      await registry().publish();
    }
    expect(await env.MESH_KV.get(SNAPSHOT_REVISION_KEY)).toBe(real);
  });

  it('the request path makes no registry-object call', async () => {
    const a = await apply(files(echoRoutes('regtest-a')));
    const reg = registry();
    const before = await reg.stats();
    // A new isolate's gateway: its first request loads the snapshot, the rest refresh it.
    const gw = createGateway({ source: new MeshSource(bundledConfig) });
    for (let i = 0; i < 60; i++) {
      const res = await call(gw, `${BASE}/regtest-a/${i}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-mesh-config-version')).toBe(a.version);
      if (i % 10 === 9) await sleep(210); // past refreshInterval: background KV reads happen too
    }
    const health = await call(gw, `${BASE}/_mesh/health`);
    expect(((await health.json()) as Json).config).toMatchObject({ version: a.version, revision: a.revision });
    const after = await reg.stats();
    // The example services heartbeat on their own (e.g. when the registry probes them); the
    // gateway never calls heartbeat, and 60 requests would show up as far more than a couple.
    const { heartbeat: hb0 = 0, ...rest0 } = before;
    const { heartbeat: hb1 = 0, ...rest1 } = after;
    expect(rest1).toEqual(rest0);
    expect(hb1 - hb0).toBeLessThan(4);
  });
});

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
    expect(json.summary.sections).toEqual(['registry']);
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
    expect(source.served.mesh.services.has('regtest-echo')).toBe(false);
    const t0 = Date.now();
    const reg = await admin('POST', 'instances', {
      body: { service: 'regtest-echo', version: 'ext', url: `${env.UPSTREAM_URL}/ext`, weight: 1000 },
      headers: { 'x-meshwork-actor': 'ops' },
    });
    expect(reg.status).toBe(201);
    created.add('regtest-echo@ext');
    expect(reg.json).toMatchObject({
      id: 'regtest-echo@ext',
      service: 'regtest-echo',
      version: 'ext',
      url: `${env.UPSTREAM_URL}/ext`,
      weight: 1000,
      status: 'active',
      source: 'admin',
    });

    const { json } = await admin('GET', 'status');
    expect(json.instances).toEqual(expect.arrayContaining([expect.objectContaining({ id: 'regtest-echo@ext' })]));
    expect(json.services.find((s: Json) => s.name === 'regtest-echo').backends).toEqual([
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
      detail: `regtest-echo@ext registered at ${env.UPSTREAM_URL}/ext`,
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

    const del = await admin('DELETE', 'instances/regtest-echo@ext');
    expect(del).toMatchObject({ status: 200, json: { removed: 'regtest-echo@ext' } });
    created.delete('regtest-echo@ext');
    expect((await admin('DELETE', 'instances/regtest-echo@ext')).status).toBe(404);
    expect((await admin('GET', 'status')).json.instances.some((i: Json) => i.id === 'regtest-echo@ext')).toBe(false);
    expect(await paths()).toEqual(new Set(['echo']));
  });

  it('accepts a JWT from an admin issuer holding the admin scope, even in an isolate that has served nothing else (403 without the scope, 401 from another issuer)', async () => {
    await apply(files('admin:\n  issuers: [local-dev]\nregistry:\n  refreshInterval: 0.2s\n'));
    // A new gateway isolate whose only traffic is admin calls.
    const via = createGateway({ source: new MeshSource(bundledConfig) });
    const as = async (token: string) => ({ via, bindings: env, headers: { authorization: `Bearer ${token}` } });
    const ok = await admin('GET', 'status', await as(await devToken({ sub: 'ops-alice', scope: 'mesh:admin' })));
    expect(ok.status).toBe(200);
    const noScope = await admin('GET', 'status', await as(await devToken({ sub: 'ops-alice', scope: 'read:a' })));
    expect(noScope.status).toBe(403);
    expect(noScope.json.error.code).toBe('insufficient_scope');
    expect(
      (
        await admin(
          'GET',
          'status',
          await as(await issuerToken('RS256', { iss: 'https://elsewhere.test', scope: 'mesh:admin' })),
        )
      ).status,
    ).toBe(401);
    expect(
      (
        await admin(
          'GET',
          'status',
          await as(await devToken({ scope: 'mesh:admin', exp: Math.floor(Date.now() / 1000) - 3600 })),
        )
      ).status,
    ).toBe(401);

    const back = await admin('POST', 'rollback', {
      body: { revision: 0 },
      ...(await as(await devToken({ sub: 'ops-alice', scope: 'mesh:admin' }))),
    });
    expect(back.status).toBe(200);
    const { audit } = (await admin('GET', 'history')).json;
    expect(audit.findLast((e: Json) => e.action === 'rollback')).toMatchObject({
      actor: 'local-dev:ops-alice',
      detail: `config back to revision 0 (${bundledConfig.version})`,
    });
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
    created.add('service-b@blue').add('service-b@green');
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

      await waitFor('green to expire', async () => (await instance('service-b@green'))?.status === 'expired', 6000);
      const expiredAfter = Date.now() - t0;
      const rows = (await admin('GET', 'status')).json.services.find((s: Json) => s.name === 'service-b').backends;
      expect(rows.find((b: Json) => b.version === 'green')).toMatchObject({ status: 'expired', inRotation: false });
      expect(rows.find((b: Json) => b.version === 'blue')).toMatchObject({ status: 'active', inRotation: true });

      // Published within the 1 s coalescing window, then served from the next refresh on.
      const t1 = Date.now();
      const published = await waitFor(
        'the expiry to be published',
        async () => {
          const snap = await kvSnapshot();
          return snap?.instances.find((i) => i.id === 'service-b@green')?.status === 'expired' && snap;
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

      expect(await beat('green')).toEqual({ id: 'service-b@green', status: 'active' });
      await waitFor('traffic to reach green again', async () => (await versions(10)).v2 !== undefined, 5000, 0);
    } finally {
      clearInterval(keepalive);
    }
  }, 20_000);
});
