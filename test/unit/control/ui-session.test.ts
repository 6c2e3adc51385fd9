/**
 * The dashboard's session cookie as pure functions (src/control/ui/session.ts): what it carries,
 * what opens it, what its CSRF token is bound to, and the Set-Cookie the gateway sends.
 */
import { describe, expect, it } from 'vitest';
import {
  clearedSessionCookie,
  cookieOf,
  csrfMatches,
  csrfToken,
  newNonce,
  openSession,
  sealSession,
  sessionCookie,
  sessionKey,
  type SessionClaims,
} from '../../../src/control/ui/session.ts';

const NOW = 1_800_000_000;
const material = { adminToken: 'a'.repeat(32), signingKey: '{"kty":"OKP"}' };
const claims = (over: Partial<SessionClaims> = {}): SessionClaims => ({
  actor: 'admin-token (dashboard)',
  kind: 'admin-token',
  exp: NOW + 3600,
  nonce: newNonce(),
  ...over,
});

describe('dashboard sessions', () => {
  it('a sealed session opens with its key until it expires, and carries no secret', async () => {
    const key = (await sessionKey(material))!;
    const c = claims();
    const value = await sealSession(key, c);
    expect(value).not.toContain(material.adminToken);
    expect(await openSession(key, value, NOW)).toEqual(c);
    expect(await openSession(key, value, c.exp - 1)).toEqual(c);
    expect(await openSession(key, value, c.exp)).toBeUndefined();
  });

  it('a session opens only with the key of the same secrets: rotating either ends it', async () => {
    const key = (await sessionKey(material))!;
    const value = await sealSession(key, claims());
    const rotatedToken = (await sessionKey({ ...material, adminToken: 'b'.repeat(32) }))!;
    const rotatedSigning = (await sessionKey({ ...material, signingKey: '{"kty":"EC"}' }))!;
    expect(await openSession(rotatedToken, value, NOW)).toBeUndefined();
    expect(await openSession(rotatedSigning, value, NOW)).toBeUndefined();
    expect(sessionKey({ adminToken: undefined, signingKey: undefined })).toBeUndefined();
  });

  it('refuses tampered claims, a cut or foreign MAC, and what is not a session at all', async () => {
    const key = (await sessionKey(material))!;
    const value = await sealSession(key, claims());
    const [body, mac] = value.split('.') as [string, string];
    const longer = Buffer.from(JSON.stringify(claims({ exp: NOW + 10 ** 9 }))).toString('base64url');
    const jwt = Buffer.from(JSON.stringify({ ...claims(), kind: 'jwt' })).toString('base64url');
    for (const forged of [
      `${longer}.${mac}`,
      `${jwt}.${mac}`,
      `${body}.${mac.slice(0, -2)}`,
      `${body}.`,
      body,
      `${body}.${mac}x`,
      '',
      '.',
      'x'.repeat(5000),
    ])
      expect(await openSession(key, forged, NOW), forged.slice(0, 40)).toBeUndefined();
  });

  it("a CSRF token is its session's: another session's, an empty one or a near miss does not match", async () => {
    const key = (await sessionKey(material))!;
    const one = await sealSession(key, claims());
    const two = await sealSession(key, claims());
    const t1 = await csrfToken(key, one);
    expect(await csrfMatches(key, one, t1)).toBe(true);
    expect(await csrfMatches(key, two, t1)).toBe(false);
    expect(await csrfMatches(key, one, undefined)).toBe(false);
    expect(await csrfMatches(key, one, '')).toBe(false);
    expect(await csrfMatches(key, one, `${t1.slice(0, -1)}${t1.endsWith('A') ? 'B' : 'A'}`)).toBe(false);
  });

  it('the cookie: HttpOnly, SameSite=Strict, for /_mesh; Secure with the __Secure- prefix over https', () => {
    expect(sessionCookie('v.m', { secure: true, maxAge: 28800 })).toBe(
      '__Secure-meshwork_session=v.m; Path=/_mesh; Max-Age=28800; HttpOnly; SameSite=Strict; Secure',
    );
    expect(sessionCookie('v.m', { secure: false, maxAge: 60.7 })).toBe(
      'meshwork_session=v.m; Path=/_mesh; Max-Age=60; HttpOnly; SameSite=Strict',
    );
    expect(clearedSessionCookie(false)).toBe('meshwork_session=; Path=/_mesh; Max-Age=0; HttpOnly; SameSite=Strict');
    expect(cookieOf('a=1; meshwork_session=v.m; b=2', 'meshwork_session')).toBe('v.m');
    expect(cookieOf('xmeshwork_session=v', 'meshwork_session')).toBeUndefined();
    expect(cookieOf('meshwork_session=', 'meshwork_session')).toBeUndefined();
    expect(cookieOf(null, 'meshwork_session')).toBeUndefined();
  });
});
