import { describe, expect, it } from 'vitest';
import { call, type Echo } from '../helpers.ts';
import { gateway, BASE } from './fixture.ts';

function expectMeshError(body: unknown, code: string, requestId: string): void {
  expect(body).toEqual({ error: { code, message: expect.any(String), requestId } });
}

describe('gateway errors', () => {
  it('404 with the JSON error body when no route matches', async () => {
    const res = await call(gateway, `${BASE}/nothing-here`, { headers: { 'x-request-id': 'r-404' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('x-request-id')).toBe('r-404');
    expectMeshError(await res.json(), 'route_not_found', 'r-404');
  });

  it('503 when the route has no backend with traffic', async () => {
    const res = await call(gateway, `${BASE}/dark`, { headers: { 'x-request-id': 'r-503' } });
    expect(res.status).toBe(503);
    expectMeshError(await res.json(), 'no_backend', 'r-503');
  });

  it('503 when the backend binding is not bound in the gateway', async () => {
    const res = await call(gateway, `${BASE}/unbound`, { headers: { 'x-request-id': 'r-unbound' } });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { message: string } };
    expectMeshError(body, 'no_backend', 'r-unbound');
    expect(body.error.message).toContain('unbound');
  });

  it('502 when the backend fails, without leaking its error', async () => {
    const res = await call(gateway, `${BASE}/broken`, { headers: { 'x-request-id': 'r-502' } });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { message: string } };
    expectMeshError(body, 'bad_gateway', 'r-502');
    expect(body.error.message).not.toContain('exploded');
  });

  it("backend error statuses are the backend's answer, passed through", async () => {
    const res = await call(gateway, `${BASE}/echo?status=500`);
    expect(res.status).toBe(500);
    expect(((await res.json()) as Echo).name).toBe('echo');
  });

  it('answers /_mesh/health with 200 and the config version', async () => {
    const res = await call(gateway, `${BASE}/_mesh/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      status: 'ok',
      config: { version: 'test-version', routes: 11, services: 4 },
      rateLimitStoreFailures: { open: expect.any(Number), closed: expect.any(Number) },
    });
    expect((await call(gateway, `${BASE}/_mesh/nope`)).status).toBe(404);
  });
});
