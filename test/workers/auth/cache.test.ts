import { describe, expect, it } from 'vitest';
import { AuthState, Issuers } from '../../../src/auth/verify.ts';
import { bundleFrom } from '../helpers.ts';
import { pub, inline, ISS, token, sleep } from './fixture.ts';

describe('verified-token cache (AuthState)', () => {
  const spec = (cache = '') =>
    bundleFrom(`
auth:
  issuers:
    ec: { issuer: "${ISS.ES256}", audiences: [meshwork], algorithms: [ES256], jwks: ${inline(pub('ES256'))} }
${cache}
services: {}
routes: []
`).config.auth;
  const io = { env: {}, waitUntil: () => {} };
  /** A fresh isolate's verification state over these issuers. */
  const verifierFor = (auth: ReturnType<typeof spec>) => {
    const state = new AuthState();
    const issuers = new Issuers(auth);
    return {
      verify: (t: string, allowed: ReadonlySet<string> | undefined, keyIo: typeof io) =>
        state.verify(issuers, t, allowed, keyIo),
    };
  };

  it('a repeated token is answered from the cache', async () => {
    const v = verifierFor(spec());
    const t = await token('ES256', { sub: 'cached' });
    const first = await v.verify(t, undefined, io);
    expect(first).toMatchObject({ ok: true, cached: false, user: { sub: 'cached', issuer: 'ec' } });
    const again = await v.verify(t, undefined, io);
    expect(again).toMatchObject({ ok: true, cached: true, user: { sub: 'cached' } });
    // The cache does not widen what a route accepts.
    expect(await v.verify(t, new Set(['other']), io)).toMatchObject({ ok: false, status: 401 });
  });

  it('is bounded by verifiedCache.maxEntries (least recently used goes first)', async () => {
    const v = verifierFor(spec('  verifiedCache: { maxEntries: 2 }'));
    const [a, b, c] = await Promise.all([1, 2, 3].map((i) => token('ES256', { sub: `u${i}` })));
    await v.verify(a!, undefined, io);
    await v.verify(b!, undefined, io);
    expect(await v.verify(a!, undefined, io)).toMatchObject({ cached: true });
    await v.verify(c!, undefined, io); // evicts b, the least recently used
    expect(await v.verify(a!, undefined, io)).toMatchObject({ cached: true });
    expect(await v.verify(b!, undefined, io)).toMatchObject({ ok: true, cached: false });
  });

  it('maxEntries: 0 turns it off', async () => {
    const v = verifierFor(spec('  verifiedCache: { maxEntries: 0 }'));
    const t = await token('ES256');
    for (let i = 0; i < 3; i++) expect(await v.verify(t, undefined, io)).toMatchObject({ ok: true, cached: false });
  });

  it('never trusts a cached token past its exp', async () => {
    const v = verifierFor(spec());
    // exp one second ahead; the issuer's 30 s skew would still accept it, the cache must not keep it.
    const t = await token('ES256', { exp: Math.floor(Date.now() / 1000) + 1 });
    expect(await v.verify(t, undefined, io)).toMatchObject({ ok: true, cached: false });
    await sleep(1100);
    expect(await v.verify(t, undefined, io)).toMatchObject({ ok: true, cached: false });
  });
});
