import { env } from 'cloudflare:test';
import { describe, expect, it, vi } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { bundledConfig } from '../../../src/generated/bundle.ts';
import { MeshSource, type Served } from '../../../src/registry/source.ts';
import { SNAPSHOT_KEY, SNAPSHOT_REVISION_KEY, type Instance } from '../../../src/registry/types.ts';
import { withMesh } from '../../../src/wrapper/index.ts';
import { call, memberEnv, type Echo } from '../helpers.ts';
import {
  BASE,
  registry,
  sleep,
  files,
  echoRoutes,
  type Json,
  admin,
  apply,
  waitFor,
  served,
  kvSnapshot,
  created,
  keepRegistryClean,
} from '../control/harness.ts';

keepRegistryClean();

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
    created.add('regtest-pub@v1/worker');
    const snap = await waitFor(
      'the heartbeat to be published',
      async () => {
        const s = await kvSnapshot();
        return s?.instances.some((i) => i.id === 'regtest-pub@v1/worker') && s;
      },
      3000,
      20,
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    // The revision key is written after the snapshot: whoever sees it finds the snapshot.
    expect(Number((await env.MESH_KV.get(SNAPSHOT_REVISION_KEY))!.split(':')[1])).toBeGreaterThanOrEqual(snap.revision);
    expect(snap.configRevision).toBe(a.revision);

    expect((await admin('DELETE', 'instances/regtest-pub@v1/worker')).status).toBe(200);
    created.delete('regtest-pub@v1/worker');
    expect((await kvSnapshot())!.instances.some((i) => i.id === 'regtest-pub@v1/worker')).toBe(false);
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
      expect(m.plan.version).toBe(bundledConfig.version);
      expect(m.plan.router.size).toBe(bundledConfig.config.routes.length);
    } finally {
      await registry().publish();
    }
    const fresh = new MeshSource(bundledConfig);
    const m = await served(fresh);
    expect(m.configRevision).toBe(a.revision);
    expect(m.plan.version).toBe(a.version);
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

  it('the request path makes no registry-object call (only one check per new snapshot)', async () => {
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
    const { heartbeat: hb0 = 0, latest: l0 = 0, ...rest0 } = before;
    const { heartbeat: hb1 = 0, latest: l1 = 0, ...rest1 } = after;
    expect(rest1).toEqual(rest0);
    // The isolate asked the registry once whether the snapshot it loaded is current.
    expect(l1 - l0).toBe(1);
    expect(hb1 - hb0).toBeLessThan(4);
  });
});

/**
 * MESH_KV as a worker sees it, with reads held at a gate the test opens (KV slow), or failing.
 * Reads go to the real namespace once the gate opens, so they see what was applied meanwhile.
 */
function gatedKv() {
  let open: () => void = () => undefined;
  let gate = Promise.resolve();
  let failing = false;
  const wait = async () => {
    await gate;
    if (failing) throw new Error('KV unavailable');
  };
  const kv = {
    reads: 0,
    get: async (key: string) => {
      kv.reads++;
      await wait();
      return env.MESH_KV.get(key);
    },
    getWithMetadata: async (key: string) => {
      await wait();
      return env.MESH_KV.getWithMetadata(key, 'text');
    },
    put: (key: string, value: string) => env.MESH_KV.put(key, value),
  };
  return {
    bindings: { ...env, MESH_KV: kv } as unknown as Record<string, unknown>,
    kv,
    close: () => {
      gate = new Promise((r) => (open = r));
    },
    open: () => open(),
    fail: (on: boolean) => {
      failing = on;
    },
  };
}

describe('after an idle period', () => {
  it('a gateway serves a change applied while it was idle on its first request, not the snapshot it held', async () => {
    const a = await apply(files(echoRoutes('regtest-a')));
    const gw = createGateway({ source: new MeshSource(bundledConfig) });
    expect((await call(gw, `${BASE}/regtest-a`)).headers.get('x-mesh-config-version')).toBe(a.version);
    // Idle for longer than 2 x refreshInterval (200 ms): its snapshot is stale.
    await sleep(450);
    const b = await apply(files(echoRoutes('regtest-a', 'regtest-b')));
    const res = await call(gw, `${BASE}/regtest-b`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mesh-config-version')).toBe(b.version);
    expect(((await res.json()) as Echo).name).toBe('url-backend');
  });

  it('so does a wrapped service', async () => {
    const a = await apply(files(echoRoutes('regtest-a')));
    const svc = withMesh(() => new Response('reached'), { service: 'service-a' });
    const bindings = memberEnv('service-a');
    const version = async () =>
      ((await (await call(svc, 'https://service-a.internal/_mesh/health', undefined, bindings)).json()) as Json).config
        .version as string;
    expect(await version()).toBe(a.version);
    await sleep(450);
    const b = await apply(files(echoRoutes('regtest-a', 'regtest-b')));
    expect(await version()).toBe(b.version);
  });

  it('while traffic flows the check stays in the background; after idle the request waits for it, at most 1 s', async () => {
    // A longer refresh interval (500 ms): the steps below need room between 1 and 2 x it.
    const routes = (...names: string[]) =>
      echoRoutes(...names).replace('refreshInterval: 0.2s', 'refreshInterval: 0.5s');
    const a = await apply(files(routes('regtest-a')));
    const s = new MeshSource(bundledConfig);
    const t0 = Date.now();
    expect((await served(s)).configRevision).toBe(a.revision);
    const kv = gatedKv();
    const pending: Array<Promise<unknown>> = [];
    const collect = (p: Promise<unknown>) => pending.push(p);
    const get = () => {
      const got: { served?: Served } = {};
      const done = s.get(kv.bindings, collect).then((m) => (got.served = m));
      return { got, done };
    };

    // Flowing: last checked between 1 and 2 x refreshInterval ago. The request is answered
    // with the snapshot held while its check waits on KV.
    await sleep(t0 + 650 - Date.now());
    kv.close();
    const flowing = get();
    await sleep(50);
    expect(flowing.got.served?.configRevision).toBe(a.revision);
    expect(kv.kv.reads).toBe(1);
    // The check goes on in the background and sees what KV shows by then.
    const b = await apply(files(routes('regtest-a', 'regtest-b')));
    kv.open();
    await Promise.all(pending);
    expect(s.served.configRevision).toBe(b.revision);

    // Idle (more than 2 x refreshInterval) and KV slow but answering: the request waits for it.
    const c = await apply(files(routes('regtest-b')));
    await sleep(1100);
    kv.close();
    setTimeout(kv.open, 300);
    expect((await s.get(kv.bindings, collect)).configRevision).toBe(c.revision);
    await Promise.all(pending);

    // Idle and KV hanging: after 1 s the held snapshot serves, with a warning; the check lands later.
    const warn = vi.spyOn(console, 'warn');
    try {
      const d = await apply(files(routes('regtest-a')));
      await sleep(1100);
      kv.close();
      const hung = get();
      await hung.done;
      expect(hung.got.served?.configRevision).toBe(c.revision);
      expect(warn.mock.calls.map(([l]) => String(l)).join('\n')).toContain('snapshot check is slow');
      kv.open();
      await Promise.all(pending);
      expect(s.served.configRevision).toBe(d.revision);

      // Idle and KV failing: the held snapshot serves at once, with a warning.
      await apply(files(routes('regtest-b')));
      await sleep(1100);
      kv.fail(true);
      expect((await s.get(kv.bindings, collect)).configRevision).toBe(d.revision);
      await Promise.all(pending);
      expect(warn.mock.calls.map(([l]) => String(l)).join('\n')).toContain('snapshot refresh failed');
    } finally {
      warn.mockRestore();
    }
  }, 20_000);
});

describe('snapshots from before endpoint keys', () => {
  it('route by their records as they did: an expired version stays out of rotation', async () => {
    const s = new MeshSource(bundledConfig, { live: false });
    const gw = createGateway({ source: s });
    const now = Date.now();
    const old = (service: string, version: string, status: 'active' | 'expired') =>
      ({
        id: `${service}@${version}`,
        service,
        version,
        registeredAt: now,
        lastHeartbeat: now,
        status,
        health: 'healthy',
        source: 'self',
      }) as unknown as Instance;
    s.apply({
      revision: 1,
      epoch: 'before-endpoint-keys',
      configRevision: 0,
      bundle: null,
      instances: [old('service-b', 'v1', 'expired'), old('service-b', 'v2', 'active')],
      publishedAt: now,
    });
    const versions = new Set<string | null>();
    for (let i = 0; i < 20; i++) {
      const res = await call(gw, `${BASE}/service-b`);
      expect(res.status).toBe(200);
      versions.add(res.headers.get('x-service-version'));
      await res.body?.cancel();
    }
    // v1 would take 90% if its expired record were not recognised.
    expect([...versions]).toEqual(['v2']);
  });
});
