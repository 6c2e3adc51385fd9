/**
 * Stages alone: the `stages` option runs any part of the pipeline, so a stage's effect on the
 * context is seen without the rest of the gateway.
 */
import { describe, expect, it } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import type { Stage } from '../../../src/gateway/context.ts';
import { authenticate } from '../../../src/gateway/stages/authenticate.ts';
import { matchRoute } from '../../../src/gateway/stages/match.ts';
import { chooseTarget } from '../../../src/gateway/stages/target.ts';
import { call, devToken, planFrom } from '../helpers.ts';

const plan = planFrom(`
auth:
  issuers:
    local-dev: { issuer: https://dev.meshwork.local, audiences: [meshwork], algorithms: [ES256], jwks: { env: MESH_DEV_JWKS } }
services:
  a: { backends: [{ binding: A, version: v1 }] }
routes:
  - name: users
    matches: [{ path: { pattern: "/users/:id" } }]
    service: a
    version: v1
    rewrite: { path: /profile }
    auth: { mode: optional }
`);

/** The last stage: answers with what the stages before it decided. */
const report: Stage = (ctx) =>
  Response.json({
    route: ctx.hit?.route.name ?? null,
    params: ctx.hit?.params ?? null,
    user: ctx.user?.sub ?? null,
    target: ctx.target ?? null,
    upstreamPath: ctx.upstreamPath ?? null,
  });

describe('gateway stages, one at a time', () => {
  it('match alone: finds the route and its parameters, or answers the JSON 404 and stops', async () => {
    const gw = createGateway({ plan, stages: [matchRoute, report] });
    const hit = await call(gw, 'https://gw.example.com/users/42');
    expect(await hit.json()).toEqual({
      route: 'users',
      params: { id: '42' },
      user: null,
      target: null,
      upstreamPath: null,
    });
    const miss = await call(gw, 'https://gw.example.com/nowhere');
    expect(miss.status).toBe(404);
    expect(((await miss.json()) as { error: { code: string } }).error.code).toBe('route_not_found');
  });

  it('authenticate after match: an optional route passes without a token and knows the user with one', async () => {
    const gw = createGateway({ plan, stages: [matchRoute, authenticate, report] });
    expect(((await (await call(gw, 'https://gw.example.com/users/1')).json()) as { user: unknown }).user).toBeNull();
    const token = await devToken({ sub: 'stage-user' });
    const res = await call(gw, 'https://gw.example.com/users/1', { headers: { authorization: `Bearer ${token}` } });
    expect(((await res.json()) as { user: unknown }).user).toBe('stage-user');
  });

  it('choose target after match: the service, version and rewritten path, without sending anything', async () => {
    const gw = createGateway({ plan, stages: [matchRoute, chooseTarget, report] });
    const res = await call(gw, 'https://gw.example.com/users/7');
    expect(await res.json()).toMatchObject({ target: { service: 'a', version: 'v1' }, upstreamPath: '/profile' });
  });
});
