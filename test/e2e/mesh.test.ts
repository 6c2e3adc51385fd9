import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMesh, type RunningMesh } from '../support/mesh-process.ts';

let mesh: RunningMesh;

beforeAll(async () => {
  mesh = await startMesh();
});

afterAll(async () => {
  await mesh?.stop();
});

describe('the local mesh (npm run dev), over real HTTP', () => {
  it('client -> gateway -> service-a -> service-b -> back', async () => {
    const res = await fetch(`${mesh.url}/service-a`, { headers: { 'x-request-id': 'e2e-1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('e2e-1');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      service_a: 'Hello from service-a',
      service_b: 'Hello from service-b',
      called_by: 'gateway',
      request_id: 'e2e-1',
    });
    expect(['v1', 'v2']).toContain(body.service_b_version);
  });

  it('service-b answers its greeting through the gateway', async () => {
    const res = await fetch(`${mesh.url}/service-b`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ service_b: 'Hello from service-b' });
  });

  it('splits 1,000 requests to service-b within a few percent of 90/10', async () => {
    const counts: Record<string, number> = { v1: 0, v2: 0 };
    for (let batch = 0; batch < 50; batch++) {
      const responses = await Promise.all(Array.from({ length: 20 }, () => fetch(`${mesh.url}/service-b`)));
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
    const res = await fetch(`${mesh.url}/no/such/route`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { code: string; requestId: string } };
    expect(body.error.code).toBe('route_not_found');
    expect(body.error.requestId).toBe(res.headers.get('x-request-id'));
    expect((await fetch(`${mesh.url}/_mesh/health`)).status).toBe(200);
  });

  it('a client cannot pose as a mesh caller: x-mesh-* headers are replaced at the gateway', async () => {
    const res = await fetch(`${mesh.url}/service-a`, { headers: { 'x-mesh-caller': 'service-b', 'x-mesh-route': 'admin' } });
    expect(((await res.json()) as { called_by: string }).called_by).toBe('gateway');
  });
});
