import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { probe } from '../../../src/control/registry/prober.ts';
import { createGateway } from '../../../src/gateway/app.ts';
import type { Instance } from '../../../src/registry/types.ts';
import { withMesh } from '../../../src/wrapper/index.ts';
import { YAML } from '../gateway/fixture.ts';
import { bundleFrom, call, identityHeaders, memberEnv, planFrom } from '../helpers.ts';

const BASE = 'https://gw.example.com';
const plan = planFrom(YAML);
const keys = inject('memberKeys');
const publicKeys = (...members: string[]) => JSON.stringify({ keys: members.map((m) => keys[m]!.publicJwk) });

type Health = {
  status: string;
  problems?: Array<{ code: string; message: string }>;
  config: { version: string };
};

/** The test env (the gateway's bindings) without `drop`, with `set`. */
function gatewayEnv(drop: string[] = [], set: Record<string, unknown> = {}): Record<string, unknown> {
  const e: Record<string, unknown> = { ...env };
  for (const name of drop) delete e[name];
  return { ...e, ...set };
}

/** A service's bindings: its own key, everyone's public keys, MESH_KV, and a heartbeat entrypoint. */
function serviceEnv(member: string, drop: string[] = [], set: Record<string, unknown> = {}): Record<string, unknown> {
  const e = memberEnv(member, { MESH_REGISTRY: { heartbeat: () => Promise.resolve({ ok: true }) } });
  for (const name of drop) delete e[name];
  return { ...e, ...set };
}

async function health(
  worker: Parameters<typeof call>[0],
  bindings: object,
  url = `${BASE}/_mesh/health`,
): Promise<{ status: number; body: Health }> {
  const res = await call(worker, url, undefined, bindings);
  return { status: res.status, body: (await res.json()) as Health };
}

const codes = (h: Health) => (h.problems ?? []).map((p) => p.code);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('/_mesh/health of the gateway', () => {
  it('says ok, without a problems list, when the gateway is set up', async () => {
    const { status, body } = await health(createGateway({ plan }), gatewayEnv());
    expect(status).toBe(200);
    expect(body.status).toBe('ok');
    expect(body).not.toHaveProperty('problems');
  });

  it('without a signing key: 503 degraded with the fix, and one warning per isolate in the logs', async () => {
    const warn = vi.spyOn(console, 'warn');
    const gw = createGateway({ plan });
    const bindings = gatewayEnv(['MESH_SIGNING_KEY']);
    // Every request fails; the first one logs what to do, once.
    for (let i = 0; i < 3; i++) {
      const res = await call(gw, `${BASE}/echo`, undefined, bindings);
      expect(res.status).toBe(500);
      await res.body?.cancel();
    }
    const { status, body } = await health(gw, bindings);
    expect(status).toBe(503);
    expect(body.status).toBe('degraded');
    expect(body.problems).toEqual([{ code: 'signing_key_missing', message: expect.any(String) }]);
    const message = body.problems![0]!.message;
    expect(message).toContain('MESH_SIGNING_KEY');
    expect(message).toContain('run `npx meshwork dev` once, it writes .dev.vars');
    expect(message).toContain("`npx wrangler secret put MESH_SIGNING_KEY -c <this worker's wrangler config>`");
    expect(message).toContain('`npx meshwork keys generate --member gateway`');
    const logged = warn.mock.calls
      .map(([line]) => String(line))
      .filter((line) => line.includes('signing_key_missing'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged).toEqual([{ level: 'warn', msg: message, code: 'signing_key_missing', member: 'gateway' }]);
    // Also for a new env object of the same isolate: logged once.
    await (await call(gw, `${BASE}/echo`, undefined, gatewayEnv(['MESH_SIGNING_KEY']))).body?.cancel();
    expect(warn.mock.calls.filter(([line]) => String(line).includes('signing_key_missing'))).toHaveLength(1);
  });

  it('a signing key that is not a JSON Web Key, a public key, or another member’s: 503, each named', async () => {
    for (const [text, code, says] of [
      ['{ not json', 'signing_key_invalid', 'is not a JSON Web Key'],
      [JSON.stringify(keys.gateway!.publicJwk), 'signing_key_invalid', 'must be a private JWK'],
      [JSON.stringify(keys['service-a']!.privateJwk), 'signing_key_wrong_member', 'member "service-a"'],
    ] as const) {
      const { status, body } = await health(createGateway({ plan }), gatewayEnv([], { MESH_SIGNING_KEY: text }));
      expect(status, text).toBe(503);
      expect(codes(body)).toEqual([code]);
      expect(body.problems![0]!.message).toContain(says);
      expect(body.problems![0]!.message).toContain('npx wrangler secret put MESH_SIGNING_KEY');
    }
  });

  it('public keys missing, invalid, or without its own key: degraded but serving (200)', async () => {
    for (const [bindings, code] of [
      [gatewayEnv(['MESH_PUBLIC_KEYS']), 'public_keys_missing'],
      [gatewayEnv([], { MESH_PUBLIC_KEYS: '{"not":"a jwks"}' }), 'public_keys_invalid'],
      [gatewayEnv([], { MESH_PUBLIC_KEYS: 'nope' }), 'public_keys_invalid'],
      [gatewayEnv([], { MESH_PUBLIC_KEYS: publicKeys('service-a', 'service-b') }), 'public_keys_lack_own_key'],
    ] as const) {
      const gw = createGateway({ plan });
      const { status, body } = await health(gw, bindings);
      expect(status, code).toBe(200);
      expect(body.status).toBe('degraded');
      expect(codes(body)).toEqual([code]);
      if (code !== 'public_keys_lack_own_key')
        expect(body.problems![0]!.message).toContain('npx wrangler secret put MESH_PUBLIC_KEYS');
      // It still routes.
      expect((await call(gw, `${BASE}/echo`, undefined, bindings)).status).toBe(200);
    }
  });

  it('without MESH_KV or the registry object: 200 degraded, saying what does not reach it', async () => {
    const live = createGateway({ plan });
    const { status, body } = await health(live, gatewayEnv(['MESH_KV', 'MESH_REGISTRY']));
    expect(status).toBe(200);
    expect(body.status).toBe('degraded');
    expect(codes(body)).toEqual(['kv_missing', 'registry_missing']);
    const [kv, registry] = body.problems!;
    expect(kv!.message).toContain('applied configs and registry changes reach no worker');
    expect(kv!.message).toContain('JWKS');
    expect(registry!.message).toContain('MeshRegistry');
  });
});

describe('/_mesh/health of a wrapped service', () => {
  const live = withMesh(() => new Response('reached'), { service: 'service-b' });
  const url = 'https://service-b.internal/_mesh/health';

  it('says ok when set up; a fixed config needs neither MESH_KV nor MESH_REGISTRY', async () => {
    expect(await health(live, serviceEnv('service-b'), url)).toMatchObject({ status: 200, body: { status: 'ok' } });
    const fixed = withMesh(() => new Response('reached'), {
      service: 'service-b',
      config: bundleFrom('services:\n  service-b:\n    backends:\n      - binding: SELF\nroutes: []\n'),
    });
    const { status, body } = await health(fixed, serviceEnv('service-b', ['MESH_KV', 'MESH_REGISTRY']), url);
    expect(status).toBe(200);
    expect(body.status).toBe('ok');
  });

  it('without MESH_KV and MESH_REGISTRY: 200 degraded (it serves the bundled routes, and never registers)', async () => {
    const { status, body } = await health(live, serviceEnv('service-b', ['MESH_KV', 'MESH_REGISTRY']), url);
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'degraded', service: 'service-b' });
    expect(codes(body)).toEqual(['kv_missing', 'registry_missing']);
    expect(body.problems![0]!.message).toContain('never sees an applied config');
    expect(body.problems![1]!.message).toContain('never registers');
    expect(body.problems![1]!.message).toContain('entrypoint = "RegistryHeartbeat"');
  });

  it('without its signing key or the public keys: 503, which the registry prober counts as unhealthy', async () => {
    const noSigningKey = serviceEnv('service-b', ['MESH_SIGNING_KEY']);
    const a = await health(live, noSigningKey, url);
    expect(a.status).toBe(503);
    expect(codes(a.body)).toEqual(['signing_key_missing']);
    expect(a.body.problems![0]!.message).toContain('`npx meshwork keys generate --member service-b`');

    const noPublicKeys = serviceEnv('service-b', ['MESH_PUBLIC_KEYS']);
    const b = await health(live, noPublicKeys, url);
    expect(b.status).toBe(503);
    expect(codes(b.body)).toEqual(['public_keys_missing']);
    expect(b.body.problems![0]!.message).toContain('503 auth_unavailable');
    // As it says: every request through the mesh fails.
    const res = await call(
      live,
      'https://service-b.internal/',
      { headers: await identityHeaders('gateway', 'service-b') },
      noPublicKeys,
    );
    expect(res.status).toBe(503);
    await res.body?.cancel();

    // The registry's prober (any 2xx is healthy): 503 is out, degraded-but-serving stays in.
    const inst = { service: 'service-b', healthPath: '/_mesh/health' } as Instance;
    const via = (bindings: object) => ({
      kind: 'binding' as const,
      fetcher: {
        fetch: async (input: string) => {
          const ctx = createExecutionContext();
          const r = await live.fetch(new Request(input), bindings as never, ctx);
          await waitOnExecutionContext(ctx);
          return r;
        },
      } as unknown as Fetcher,
    });
    expect(await probe(inst, via(noSigningKey))).toEqual({ ok: false, detail: 'HTTP 503' });
    expect(await probe(inst, via(serviceEnv('service-b', ['MESH_KV'])))).toEqual({ ok: true, detail: 'HTTP 200' });
    expect(await probe(inst, via(serviceEnv('service-b')))).toEqual({ ok: true, detail: 'HTTP 200' });
  });
});
