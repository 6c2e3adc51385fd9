/**
 * MeshRuntime: what an isolate keeps when a new config is applied. Verified tokens and minted
 * identity tokens survive an apply that leaves their section alone, and are dropped for an
 * apply that changes it.
 */
import { env } from 'cloudflare:test';
import { describe, expect, inject, it } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { MeshSource } from '../../../src/registry/source.ts';
import { call, issuerToken, versionedBundle, type Echo } from '../helpers.ts';

const issuerKey = JSON.stringify({ keys: [inject('issuerKeys').ES256.publicJwk] });

function yaml({ audiences = '[meshwork]', extraRoute = '', tokenTtl = '60s' } = {}): string {
  return `
auth:
  issuers:
    ec: { issuer: https://runtime.test, audiences: ${audiences}, algorithms: [ES256], jwks: ${issuerKey} }
identity:
  tokenTtl: ${tokenTtl}
services:
  echo:
    backends: [{ binding: ECHO }]
routes:
  - name: api
    matches: [{ path: { prefix: /api } }]
    service: echo
    auth: {}
${extraRoute}`;
}

const EXTRA = `  - name: more
    matches: [{ path: { prefix: /more } }]
    service: echo
`;

describe('state that outlives config versions', () => {
  it('an apply that changes only routes keeps verified tokens and minted identity tokens; changing a section drops only its own', async () => {
    const source = new MeshSource(await versionedBundle(yaml()), { live: false });
    const gateway = createGateway({ source });
    const token = await issuerToken('ES256', { iss: 'https://runtime.test', sub: 'kept' });
    const send = async () => {
      const res = await call(gateway, 'https://gw.example.com/api/x', {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
      const seen = (await res.json()) as Echo;
      return {
        version: res.headers.get('x-mesh-config-version'),
        identity: seen.headers['x-mesh-identity'],
        user: seen.headers['x-mesh-user'],
      };
    };
    const verified = async () =>
      source.runtime.auth.verify(source.served.plan.auth, token, undefined, { env: { ...env }, waitUntil: () => {} });
    let revision = 0;
    const apply = async (text: string) =>
      source.apply({
        revision: ++revision,
        epoch: 'runtime-test',
        configRevision: revision,
        bundle: await versionedBundle(text),
        instances: [],
        publishedAt: Date.now(),
      });

    const first = await send();
    expect(await verified()).toMatchObject({ ok: true, cached: true });
    // Tokens carry their issue time in seconds: one minted again later would differ.
    await new Promise((r) => setTimeout(r, 1100));

    // A new route: a new plan, the same runtime.
    await apply(yaml({ extraRoute: EXTRA }));
    const second = await send();
    expect(second.version).not.toBe(first.version);
    expect(await verified()).toMatchObject({ ok: true, cached: true });
    // The very same identity token (the echo service calls on no other, so it carries the user
    // and there is no separate assertion): nothing was signed again.
    expect(first.user).toBeUndefined();
    expect(second.identity).toBe(first.identity);

    // The issuer changes (one more audience): its earlier verdicts no longer count, and the token
    // carrying the user is minted for the user as verified anew.
    await apply(yaml({ extraRoute: EXTRA, audiences: '[meshwork, other]' }));
    expect(await verified()).toMatchObject({ ok: true, cached: false });
    const third = await send();
    expect(third.identity).not.toBe(first.identity);
    await new Promise((r) => setTimeout(r, 1100));
    // ...and kept from then on.
    expect((await send()).identity).toBe(third.identity);

    // The identity section changes: tokens are minted anew under it.
    await apply(yaml({ extraRoute: EXTRA, audiences: '[meshwork, other]', tokenTtl: '120s' }));
    const fourth = await send();
    expect(fourth.identity).not.toBe(third.identity);
  });
});
