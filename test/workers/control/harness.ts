/**
 * Shared by the registry, admin API and read-path tests: the service registry and control plane
 * inside workerd: the real MeshRegistry Durable Object
 * (hosted by the gateway bundle, as in production), the KV namespace every worker shares, a
 * gateway built on a MeshSource with its admin API, and the example services as real workers
 * that heartbeat to the registry and read their config from its snapshots.
 *
 * The registry and KV are shared with every other test file (one file runs at a time): each
 * test leaves them as it found them (config back at revision 0, the bundled routes; its own
 * instances deregistered; the snapshot republished).
 */
import { env } from 'cloudflare:test';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { bundledConfig } from '../../../src/generated/bundle.ts';
import { MeshSource, type Served } from '../../../src/registry/source.ts';

import { REGISTRY_NAME, SNAPSHOT_KEY, type Instance, type Snapshot } from '../../../src/registry/types.ts';
import { call } from '../helpers.ts';

export const TOKEN = 'x'.repeat(32);
export const adminEnv = { ...env, MESH_ADMIN_TOKEN: TOKEN };
export const BASE = 'https://gw.example.com';
export const ACTOR = 'registry-test';
export const MESH_YAML = bundledConfig.sources![0]!.text;

export const registry = () => env.MESH_REGISTRY.get(env.MESH_REGISTRY.idFromName(REGISTRY_NAME));
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Runs a worker's cron handler over its service binding, as the cron trigger would. */
export const cron = (svc: Fetcher) =>
  (svc as unknown as { scheduled(o: { cron: string }): Promise<unknown> }).scheduled({ cron: '* * * * *' });

/** A gateway as deployed: bundled routes/ overlaid by the registry's snapshots from KV. */
export const source = new MeshSource(bundledConfig);
export const gateway = createGateway({ source });

export type Files = Array<{ name: string; text: string }>;

/** The bundled mesh.yaml (or `base`), plus an extra routes file when given. */
export function files(extra?: string, base = MESH_YAML): Files {
  return [{ name: 'mesh.yaml', text: base }, ...(extra ? [{ name: 'extra.yaml', text: extra }] : [])];
}

/** A service at the test's URL backend and a route to it, plus a short refresh interval. */
export function echoRoutes(...names: string[]): string {
  return `services:
  regtest-echo:
    backends:
      - url: "${env.UPSTREAM_URL}/echo"
routes:
${names.map((n) => `  - name: ${n}\n    matches: [{ path: { prefix: /${n} } }]\n    service: regtest-echo\n`).join('')}registry:
  refreshInterval: 0.2s
# The test's URL backend runs on this machine.
network:
  allowLoopbackBackends: true
`;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface AdminCall {
  body?: unknown;
  headers?: Record<string, string>;
  /** The gateway's env (default: the test env plus MESH_ADMIN_TOKEN). */
  bindings?: object;
  /** Default: the shared gateway. */
  via?: { fetch(request: Request, env: never, ctx: ExecutionContext): Response | Promise<Response> };
}

export async function admin(
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

export async function apply(
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
export async function waitFor<T>(
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
export async function served(s: MeshSource, bindings = env as unknown as Record<string, unknown>): Promise<Served> {
  const pending: Array<Promise<unknown>> = [];
  await s.get(bindings, (p) => pending.push(p));
  await Promise.all(pending);
  return s.served;
}

/** Waits until `s` serves config revision `revision`. */
export function servesRevision(s: MeshSource, revision: number): Promise<Served> {
  return waitFor(`config revision ${revision} to be served`, async () => {
    const m = await served(s);
    return m.configRevision === revision && m;
  });
}

export async function instance(id: string): Promise<Instance | undefined> {
  return (await registry().status()).instances.find((i) => i.id === id) as Instance | undefined;
}

export async function kvSnapshot(): Promise<Snapshot | null> {
  return env.MESH_KV.get<Snapshot>(SNAPSHOT_KEY, 'json');
}

/** Instances this file registered, deregistered after each test. */
export const created = new Set<string>();

export async function restore(): Promise<void> {
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

export const EXAMPLES = ['service-a/worker', 'service-b@v1/worker', 'service-b@v2/worker'];
/** The example services' registrations when this file started (they may be expired and dropped meanwhile). */
export let initialIds: string[] = [];

/**
 * The registry and KV are shared with every other test file (one file runs at a time): each test
 * leaves them as it found them (config back at revision 0, the bundled routes; its own
 * instances deregistered; the snapshot republished). Call once at the top of a test file.
 */
export function keepRegistryClean(): void {
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
}
