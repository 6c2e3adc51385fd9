import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMesh, type RunningMesh } from '../support/mesh-process.ts';
import { localFetch } from '../support/local-http.ts';

let mesh: RunningMesh;

/** A token from the CLI, exactly as the README's walk-through gets one. */
function devToken(...args: string[]): string {
  const r = spawnSync(process.execPath, ['bin/meshwork.js', 'token', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`meshwork token failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').at(-1)!;
}

beforeAll(async () => {
  mesh = await startMesh();
});

afterAll(async () => {
  await mesh?.stop();
});

describe('the local mesh (npm run dev), over real HTTP', () => {
  it('/service-a without a token: 401 with a Bearer challenge', async () => {
    const res = await localFetch(`${mesh.url}/service-a`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="meshwork"');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
  });

  it('/service-a with a token lacking read:a: 403 insufficient_scope', async () => {
    const res = await localFetch(`${mesh.url}/service-a`, {
      headers: { authorization: `Bearer ${devToken('--sub', 'bob', '--ttl', '10m')}` },
    });
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope", scope="read:a"');
  });

  it('client -> gateway -> service-a -> service-b -> back, with a token from `meshwork token`', async () => {
    const token = devToken('--sub', 'alice', '--scope', 'read:a', '--ttl', '1h');
    const res = await localFetch(`${mesh.url}/service-a`, {
      headers: { authorization: `Bearer ${token}`, 'x-request-id': 'e2e-1' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('e2e-1');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      service_a: 'Hello from service-a',
      service_b: 'Hello from service-b',
      called_by: 'gateway',
      user: 'alice',
      request_id: 'e2e-1',
    });
    expect(['v1', 'v2']).toContain(body.service_b_version);
  });

  it('service-b knows both the user and the calling service, and spoofed mesh headers change nothing', async () => {
    const token = devToken('--sub', 'alice', '--scope', 'read:a');
    const res = await localFetch(`${mesh.url}/service-a/whoami-b`, {
      headers: {
        authorization: `Bearer ${token}`,
        'x-mesh-user': 'forged',
        'x-mesh-identity': 'forged',
        'x-mesh-sub': 'mallory',
      },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      service: 'service-b',
      caller: 'service-a',
      user: { sub: 'alice', scopes: ['read:a'] },
    });
  });

  it("a user's limit holds exactly under concurrent requests (their store calls share round trips): 60 at once, 5 admitted, the rest 429, none failed or hung", async () => {
    // per-user: 5 per 10 s, one more every 2 s. A user of its own, so no other test's requests count.
    const token = devToken('--sub', `burst-${Date.now()}`, '--scope', 'read:a');
    const start = Date.now();
    const statuses = await Promise.all(
      Array.from({ length: 60 }, async () => {
        const res = await localFetch(`${mesh.url}/service-a`, { headers: { authorization: `Bearer ${token}` } });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    const elapsed = Date.now() - start;
    const admitted = statuses.filter((s) => s === 200).length;
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(admitted).toBeGreaterThanOrEqual(5);
    expect(admitted).toBeLessThanOrEqual(5 + Math.floor(elapsed / 2000));
  });

  it('service-b answers its greeting through the gateway', async () => {
    const res = await localFetch(`${mesh.url}/service-b`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ service_b: 'Hello from service-b' });
  });

  it('splits 1,000 requests to service-b within a few percent of 90/10', async () => {
    const counts: Record<string, number> = { v1: 0, v2: 0 };
    for (let batch = 0; batch < 50; batch++) {
      const responses = await Promise.all(Array.from({ length: 20 }, () => localFetch(`${mesh.url}/service-b`)));
      for (const r of responses) {
        expect(r.status).toBe(200);
        const v = r.headers.get('x-service-version')!;
        counts[v] = (counts[v] ?? 0) + 1;
        await r.arrayBuffer();
      }
    }
    expect(counts.v1! + counts.v2!).toBe(1000);
    expect(Math.abs(counts.v2! / 1000 - 0.1)).toBeLessThan(0.04);
  });

  it('answers an unknown path with the JSON 404 and the health endpoint with 200', async () => {
    const res = await localFetch(`${mesh.url}/no/such/route`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { code: string; requestId: string } };
    expect(body.error.code).toBe('route_not_found');
    expect(body.error.requestId).toBe(res.headers.get('x-request-id'));
    expect((await localFetch(`${mesh.url}/_mesh/health`)).status).toBe(200);
  });
});
