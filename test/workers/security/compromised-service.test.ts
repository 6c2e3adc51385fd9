/**
 * What a compromised service can do, tried from a real worker with a genuine member identity
 * ("service-c") and exactly the bindings services get: the shared KV namespace and the gateway's
 * heartbeat and rate-limit entrypoints (test/fixtures/compromised-service.ts). It must not be
 * able to change what the gateway or other services trust.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/core/hash.ts';
import { createGateway } from '../../../src/gateway/app.ts';
import { bundledConfig } from '../../../src/generated/bundle.ts';
import { MeshSource } from '../../../src/registry/source.ts';
import { SNAPSHOT_REVISION_KEY, snapshotKey, type Snapshot } from '../../../src/registry/types.ts';
import { call, devToken, issuerToken } from '../helpers.ts';
import { apply, BASE, echoRoutes, files, keepRegistryClean, registry, served } from '../control/harness.ts';

keepRegistryClean();

type Json = Record<string, unknown>;

async function attack(path: string, body: Json = {}): Promise<Json> {
  const res = await env.COMPROMISED.fetch(`https://compromised.internal/attack/${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
  });
  expect(res.status, path).toBe(200);
  return (await res.json()) as Json;
}

/** A config of the attacker's: its own issuer (RS256 test keys) and a route of its own. */
function forgedSnapshot(revision: number): Snapshot {
  return {
    revision,
    epoch: 'forged',
    configRevision: 1,
    publishedAt: Date.now() + 60_000,
    instances: [],
    bundle: {
      version: 'ffffffffffff',
      config: {
        services: { 'service-b': { backends: [{ binding: 'SERVICE_B_V1' }] } },
        routes: [{ name: 'pwned', matches: [{ path: { prefix: '/pwned' } }], service: 'service-b' }],
      },
    },
  } as unknown as Snapshot;
}

/** A fresh gateway isolate: its first request reads the snapshot the marker names. */
async function freshGateway() {
  const source = new MeshSource(bundledConfig);
  const gateway = createGateway({ source });
  return { source, gateway, first: await call(gateway, `${BASE}/_mesh/health`) };
}

describe('a compromised service and the shared KV namespace', () => {
  it('cannot make gateways route by a snapshot of its own: unsigned, or signed with its own key, it is refused, counted, and the last good config stays', async () => {
    const reg = registry();
    await reg.publish();
    const genuine = await env.MESH_KV.get(SNAPSHOT_REVISION_KEY);
    const forged = JSON.stringify(forgedSnapshot(999_999));

    // Unsigned.
    await attack('kv-put', { key: snapshotKey('forged:999999'), value: forged });
    await attack('kv-put', { key: SNAPSHOT_REVISION_KEY, value: 'forged:999999' });
    let gw = await freshGateway();
    expect(gw.source.served.plan.version).toBe(bundledConfig.version);
    expect(((await gw.first.json()) as { rejected: Json }).rejected).toMatchObject({ snapshotsRejected: 1 });
    expect((await call(gw.gateway, `${BASE}/pwned`)).status).toBe(404);

    // Signed by the attacker's own (genuine) member key, claiming to be the snapshot.
    const claims = {
      epoch: 'forged',
      revision: 999_999,
      publishedAt: forgedSnapshot(1).publishedAt,
      sha256: await sha256Hex(forged),
    };
    const { jws } = await attack('sign', { payload: claims, typ: 'mesh-snapshot+jwt', iss: 'meshwork-registry' });
    await attack('kv-put', { key: snapshotKey('forged:999999'), value: forged, metadata: { sig: jws } });
    gw = await freshGateway();
    expect(gw.source.served.plan.version).toBe(bundledConfig.version);
    expect(gw.source.runtime.counters.snapshotsRejected).toBe(1);
    expect((await call(gw.gateway, `${BASE}/pwned`)).status).toBe(404);

    // The genuine marker back: the same fresh isolate takes the registry's signed snapshot.
    await reg.publish();
    expect(await env.MESH_KV.get(SNAPSHOT_REVISION_KEY)).not.toBe('forged:999999');
    gw = await freshGateway();
    expect(gw.source.served.revision).toBe((await reg.status()).revision);
    expect(gw.source.runtime.counters.snapshotsRejected).toBe(0);
    expect(genuine).not.toBeNull();
  });

  it('cannot put an older genuine snapshot back under the marker for a gateway that has a newer one', async () => {
    const reg = registry();
    await reg.publish();
    const older = (await reg.status()).revision;
    const oldMarker = (await env.MESH_KV.get(SNAPSHOT_REVISION_KEY))!;
    const old = await env.MESH_KV.getWithMetadata(snapshotKey(oldMarker), 'text');
    // A change, published: a gateway that read it is at a newer revision.
    const t = Date.now();
    await reg.heartbeat({ service: 'service-b', version: 'replay-test' });
    await reg.publish();
    const source = new MeshSource(bundledConfig);
    const m = await served(source);
    expect(m.revision).toBeGreaterThan(older);
    // The attacker copies the older (genuinely signed) snapshot and points the marker at it.
    await attack('kv-put', { key: snapshotKey(`${oldMarker}-again`), value: old.value!, metadata: old.metadata });
    await attack('kv-put', { key: SNAPSHOT_REVISION_KEY, value: `${oldMarker}-again` });
    // Past the refresh interval, the gateway reads it and does not go back.
    await new Promise((r) => setTimeout(r, 5100));
    expect((await served(source)).revision).toBe(m.revision);
    await reg.deregister('service-b@replay-test/worker', 'test');
    await reg.publish();
    expect(Date.now() - t).toBeGreaterThan(5000);
  }, 15_000);

  it('cannot point a new isolate at an older genuine snapshot: the registry says its config was replaced', async () => {
    // The attacker keeps a copy of a genuine snapshot carrying config A...
    const a = await apply(files(echoRoutes('replay-a')));
    const oldMarker = (await env.MESH_KV.get(SNAPSHOT_REVISION_KEY))!;
    const old = await env.MESH_KV.getWithMetadata(snapshotKey(oldMarker), 'text');
    expect(JSON.parse(old.value!)).toMatchObject({ configRevision: a.revision });
    // ...the operator replaces A (say, to drop an issuer whose key leaked)...
    const b = await apply(files(echoRoutes('replay-b')));
    // ...and the attacker puts A's snapshot back under the marker.
    await attack('kv-put', { key: snapshotKey(`${oldMarker}-again`), value: old.value!, metadata: old.metadata });
    await attack('kv-put', { key: SNAPSHOT_REVISION_KEY, value: `${oldMarker}-again` });
    try {
      // Once KV has had time to catch up (kvLagMs; 2 minutes in production), a new isolate
      // refuses it, counts it, and serves the bundled routes until the genuine marker is back.
      const strict = new MeshSource(bundledConfig, { kvLagMs: 0 });
      const gw = createGateway({ source: strict });
      const health = (await (await call(gw, `${BASE}/_mesh/health`)).json()) as { rejected: Json };
      expect(health.rejected).toMatchObject({ snapshotsRejected: 1 });
      expect(strict.served.revision).toBe(-1);
      expect((await call(gw, `${BASE}/replay-a`)).status).toBe(404);
      // A service's wrapper asks through the heartbeat entrypoint, the only registry door it has.
      const asService = { ...(env as unknown as Record<string, unknown>), MESH_REGISTRY: env.MESH_HEARTBEAT };
      const service = new MeshSource(bundledConfig, { kvLagMs: 0 });
      expect((await served(service, asService)).revision).toBe(-1);
      expect(service.runtime.counters.snapshotsRejected).toBe(1);
      // Just after a change the snapshot before it is still served: KV may really show it.
      const lenient = new MeshSource(bundledConfig);
      expect((await served(lenient)).configRevision).toBe(a.revision);
      expect(lenient.runtime.counters.snapshotsRejected).toBe(0);
    } finally {
      await registry().publish();
    }
    const fresh = new MeshSource(bundledConfig, { kvLagMs: 0 });
    expect((await served(fresh)).configRevision).toBe(b.revision);
  });

  it('cannot plant keys in the shared JWKS cache: an entry without a gateway seal is ignored and the identity provider asked', async () => {
    const name = `seal-${crypto.randomUUID().slice(0, 8)}`;
    const uri = `${env.UPSTREAM_URL}/jwks/${name}`;
    // The identity provider publishes the ES256 test key; the attacker's cache entry names the RS256 one.
    const keys = (await import('vitest')).inject('issuerKeys');
    await fetch(`${env.UPSTREAM_URL}/jwks-control/${name}`, {
      method: 'POST',
      body: JSON.stringify({ keys: [keys.ES256.publicJwk] }),
    });
    const planted = {
      jwks: { keys: [keys.RS256.publicJwk] },
      fetchedAt: Date.now() + 1e9,
      expiresAt: Date.now() + 1e10,
    };
    await attack('kv-put', {
      key: `jwks:v1:${uri}`,
      value: JSON.stringify(planted),
      metadata: { mac: 'f'.repeat(64) },
    });

    const { planFrom } = await import('../helpers.ts');
    const plan = planFrom(`
auth:
  issuers:
    idp: { issuer: https://idp.test, audiences: [meshwork], algorithms: [ES256, RS256], jwksUri: "${uri}" }
services: { echo: { backends: [{ binding: ECHO }] } }
routes: [{ name: api, service: echo, auth: {} }]
`);
    const source = MeshSource.fixed(plan);
    const gw = createGateway({ source });
    const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
    const attackers = await issuerToken('RS256', { iss: 'https://idp.test' });
    expect((await call(gw, `${BASE}/api`, bearer(attackers))).status).toBe(401);
    const users = await issuerToken('ES256', { iss: 'https://idp.test' });
    expect((await call(gw, `${BASE}/api`, bearer(users))).status).toBe(200);
    expect(source.runtime.counters.jwksCacheRejected).toBeGreaterThanOrEqual(1);
    const after = await attack('kv-get', { key: `jwks:v1:${uri}` });
    // The gateway wrote the keys it fetched, sealed, over the planted entry.
    expect(JSON.parse(String(after.value))).toMatchObject({
      jwks: { keys: [expect.objectContaining({ kid: 'ES256-1' })] },
    });
  });
});

describe('a compromised service and the rate limits', () => {
  it("cannot reach the buckets' Durable Objects, nor take from a policy that is not its own", async () => {
    const sub = `victim-${crypto.randomUUID().slice(0, 8)}`;
    // Its binding is the identity-checked entrypoint, not the namespace: no bucket can be named.
    expect(await attack('bucket', { bucket: `gateway|per-user|local-dev~${sub}` })).toMatchObject({ reached: false });
    for (const policy of ['per-user', 'service-b-from-a', 'no-such-policy']) {
      const answer = await attack('limiter', { policy, key: `${policy}|local-dev~${sub}`, raw: sub, want: 1000 });
      expect(answer).toEqual({ ok: false, error: `rate limit refused: "${policy}" is not a policy of service-c` });
    }
    // The user's budget at the gateway is whole: 5 requests per 10 s to /service-a.
    const gateway = createGateway({
      source: MeshSource.fixed((await import('../../../src/plan/compile.ts')).compilePlan(bundledConfig)),
    });
    const token = await devToken({ sub, scope: 'read:a' });
    const statuses = [];
    for (let i = 0; i < 6; i++)
      statuses.push(
        (await call(gateway, `${BASE}/service-a`, { headers: { authorization: `Bearer ${token}` } })).status,
      );
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  });
});
