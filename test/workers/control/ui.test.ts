/**
 * The dashboard's login and session (/_mesh/ui) against the real gateway app and registry: what
 * the cookie is, what it may do on the admin API, and what it may not.
 */
import { env as testEnv } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { sealSession, sessionKey, SESSION_TTL_SECONDS } from '../../../src/control/ui/session.ts';
import { createGateway } from '../../../src/gateway/app.ts';
import { bundledConfig } from '../../../src/generated/bundle.ts';
import { MeshSource } from '../../../src/registry/source.ts';
import { call, devToken } from '../helpers.ts';
import {
  TOKEN,
  adminEnv as harnessEnv,
  BASE,
  gateway,
  registry,
  files,
  apply,
  created,
  keepRegistryClean,
  servesRevision,
  type Json,
} from './harness.ts';

keepRegistryClean();

// These tests use a test host, so the dashboard is on as under `npm run dev` (where it runs
// without admin.dashboardHost); the last describe checks where it is off.
const env = { ...testEnv, MESHWORK_DEV: '1' };
const adminEnv = { ...harnessEnv, MESHWORK_DEV: '1' };

const UI = `${BASE}/_mesh/ui`;
const COOKIE = '__Secure-meshwork_session';

type Bindings = object;

type Gateway = typeof gateway;

async function login(
  token: string,
  { origin = BASE, bindings = adminEnv as Bindings, base = BASE, via = gateway as Gateway } = {},
): Promise<Response> {
  return call(
    via,
    `${base}/_mesh/ui/login`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(origin ? { origin } : {}) },
      body: new URLSearchParams({ token }).toString(),
      redirect: 'manual',
    },
    bindings,
  );
}

/** "name=value" of the session cookie a login set. */
function cookieFrom(res: Response): string {
  const set = res.headers.get('set-cookie') ?? '';
  const m = /^([^=;]+=[^;]*)/.exec(set);
  if (!m) throw new Error(`no cookie set (${res.status})`);
  return m[1]!;
}

async function session(bindings: Bindings = adminEnv): Promise<{ cookie: string; csrf: string }> {
  const res = await login(TOKEN, { bindings });
  expect(res.status).toBe(303);
  const cookie = cookieFrom(res);
  const page = await call(gateway, UI, { headers: { cookie } }, bindings);
  const html = await page.text();
  const csrf = /<meta name="meshwork-csrf" content="([^"]+)"/.exec(html)?.[1];
  expect(csrf, 'the dashboard carries its CSRF token').toBeTruthy();
  return { cookie, csrf: csrf! };
}

async function adminAs(
  cookie: string,
  method: string,
  path: string,
  {
    body,
    headers = {},
    bindings = adminEnv as Bindings,
    via = gateway,
  }: { body?: unknown; headers?: Record<string, string>; bindings?: Bindings; via?: Gateway } = {},
): Promise<{ status: number; json: Json }> {
  const res = await call(
    via,
    `${BASE}/_mesh/admin/${path}`,
    {
      method,
      headers: { cookie, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    },
    bindings,
  );
  return { status: res.status, json: await res.json() };
}

describe('dashboard login (/_mesh/ui)', () => {
  it('without a session, the page is the login form, with the security headers', async () => {
    const res = await call(gateway, UI, {}, adminEnv);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    expect(html).toContain('<form method="post" action="/_mesh/ui/login"');
    expect(html).not.toContain('meshwork-csrf');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    // No inline script anywhere: every script is a file from this origin.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
  });

  it('/_mesh/ui/ is the same page: a permanent redirect to /_mesh/ui', async () => {
    const res = await call(gateway, `${UI}/`, { redirect: 'manual' }, adminEnv);
    expect(res.status).toBe(308);
    expect(new URL(res.headers.get('location')!, BASE).pathname).toBe('/_mesh/ui');
  });

  it('the right admin token sets an HttpOnly, SameSite=Strict, Secure session cookie for /_mesh (not the token), and opens the dashboard', async () => {
    const res = await login(TOKEN);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/_mesh/ui');
    const set = res.headers.get('set-cookie') ?? '';
    const attrs = set.split(';').map((s) => s.trim());
    expect(attrs[0]).toMatch(new RegExp(`^${COOKIE}=[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$`));
    expect(attrs).toEqual(expect.arrayContaining(['HttpOnly', 'SameSite=Strict', 'Secure', 'Path=/_mesh']));
    const maxAge = Number(attrs.find((a) => a.startsWith('Max-Age='))!.slice(8));
    expect(maxAge).toBeGreaterThan(SESSION_TTL_SECONDS - 60);
    expect(maxAge).toBeLessThanOrEqual(SESSION_TTL_SECONDS);
    expect(set).not.toContain(TOKEN);
    expect(atob(attrs[0]!.split('=')[1]!.split('.')[0]!.replace(/-/g, '+').replace(/_/g, '/'))).not.toContain(TOKEN);

    const page = await call(gateway, UI, { headers: { cookie: cookieFrom(res) } }, adminEnv);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/_mesh/ui/assets/dashboard.js"></script>');
    expect(html).toContain('admin-token (dashboard)');
  });

  it('over plain http the cookie is not Secure (and has no __Secure- prefix)', async () => {
    const res = await login(TOKEN, { origin: 'http://gw.example.com', base: 'http://gw.example.com' });
    expect(res.status).toBe(303);
    const set = res.headers.get('set-cookie') ?? '';
    expect(set).toMatch(/^meshwork_session=/);
    expect(set).toContain('HttpOnly');
    expect(set).toContain('SameSite=Strict');
    expect(set).not.toContain('Secure');
  });

  it('a wrong token gets 401 and no cookie', async () => {
    for (const token of ['y'.repeat(32), TOKEN.slice(1), `${TOKEN}x`]) {
      const res = await login(token);
      expect(res.status).toBe(401);
      expect(res.headers.get('set-cookie')).toBeNull();
      expect(await res.text()).toContain('Not a valid admin credential');
    }
    // Nor does any token when the gateway's MESH_ADMIN_TOKEN is too short to be safe.
    const short = await login('short', { bindings: { ...env, MESH_ADMIN_TOKEN: 'short' } });
    expect(short.status).toBe(401);
    expect(short.headers.get('set-cookie')).toBeNull();
  });

  it('a login posted from another origin (or with no origin at all) is refused, even with the right token', async () => {
    for (const origin of ['https://evil.example', 'http://gw.example.com', 'null', '']) {
      const res = await login(TOKEN, { origin });
      expect(res.status, `origin "${origin}"`).toBe(403);
      expect(res.headers.get('set-cookie')).toBeNull();
    }
  });

  it('an admin JWT logs in too; the session ends with the token and when its issuer stops being an admin issuer', async () => {
    await apply(files('admin:\n  issuers: [local-dev]\nregistry:\n  refreshInterval: 0.2s\n'));
    // A new gateway isolate: its first request loads the config just applied.
    const fresh = new MeshSource(bundledConfig);
    const via = createGateway({ source: fresh });
    const exp = Math.floor(Date.now() / 1000) + 600;
    const jwt = await devToken({ aud: 'meshwork-admin', sub: 'ops-alice', scope: 'mesh:admin', exp });
    const res = await login(jwt, { bindings: env, via });
    expect(res.status).toBe(303);
    const maxAge = Number(/Max-Age=(\d+)/.exec(res.headers.get('set-cookie') ?? '')![1]);
    expect(maxAge).toBeLessThanOrEqual(600);
    expect(maxAge).toBeGreaterThan(500);
    const cookie = cookieFrom(res);
    expect((await adminAs(cookie, 'GET', 'status', { bindings: env, via })).status).toBe(200);

    // A valid token without the admin scope: 403, no session.
    const noScope = await login(await devToken({ aud: 'meshwork-admin', scope: 'read:a' }), { bindings: env, via });
    expect(noScope.status).toBe(403);
    expect(noScope.headers.get('set-cookie')).toBeNull();

    // The bundled routes have no admin issuers: the JWT session is over.
    expect(await registry().rollback(0, 'ui-test')).toMatchObject({ revision: 0 });
    await registry().publish();
    await servesRevision(fresh, 0);
    const after = await adminAs(cookie, 'GET', 'status', { bindings: env, via });
    expect(after.status).toBe(401);
    expect(after.json.error.code).toBe('invalid_session');
  });
});

describe('the session on the admin API', () => {
  it('reads status and config with the cookie alone', async () => {
    const { cookie } = await session();
    const status = await adminAs(cookie, 'GET', 'status');
    expect(status.status).toBe(200);
    expect(status.json.services.map((s: Json) => s.name)).toEqual(expect.arrayContaining(['service-a', 'service-b']));
    const config = await adminAs(cookie, 'GET', 'config');
    expect(config.status).toBe(200);
    expect(config.json.config.routes.map((r: Json) => r.name)).toContain('service-a');
  });

  it("cannot change anything without the CSRF header (or with another session's), and can with its own", async () => {
    const { cookie, csrf } = await session();
    const other = await session();
    expect(other.csrf).not.toBe(csrf);
    const before = await registry().status();
    // A version's record: it routes nothing, so registering it disturbs no other test.
    const instance = { service: 'service-b', version: 'regtest-ui' };
    const attempts: Array<Record<string, string>> = [
      {},
      { 'x-meshwork-csrf': 'nope' },
      { 'x-meshwork-csrf': other.csrf },
    ];
    for (const headers of attempts) {
      for (const [method, path, body] of [
        ['POST', 'instances', instance],
        ['POST', 'rollback', {}],
        ['DELETE', `instances/${before.instances[0]?.id ?? 'service-a'}`, undefined],
      ] as const) {
        const r = await adminAs(cookie, method, path, { body, headers });
        expect(r.status, `${method} ${path} with ${JSON.stringify(headers)}`).toBe(403);
        expect(r.json.error.code).toBe('csrf_failed');
      }
    }
    const after = await registry().status();
    expect(after.instances.map((i) => i.id).sort()).toEqual(before.instances.map((i) => i.id).sort());
    expect(after.configRevision).toBe(before.configRevision);

    const ok = await adminAs(cookie, 'POST', 'instances', { body: instance, headers: { 'x-meshwork-csrf': csrf } });
    expect(ok.status).toBe(201);
    created.add(ok.json.id);
    const { audit } = (await adminAs(cookie, 'GET', 'history')).json;
    expect(audit.findLast((e: Json) => e.action === 'register')).toMatchObject({ actor: 'admin-token (dashboard)' });
  });

  it('refuses a forged, tampered, expired or rotated-key cookie', async () => {
    const { cookie } = await session();
    const [name, value] = cookie.split('=') as [string, string];
    const [body, mac] = value.split('.') as [string, string];
    const claims = JSON.parse(atob(body.replace(/-/g, '+').replace(/_/g, '/')));
    const b64 = (s: string) => btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    const now = Math.floor(Date.now() / 1000);
    const key = await sessionKey({ adminToken: TOKEN, signingKey: env.MESH_SIGNING_KEY })!;
    const otherKey = await sessionKey({ adminToken: 'z'.repeat(32), signingKey: env.MESH_SIGNING_KEY })!;
    const forged: Array<[string, string]> = [
      ['claims changed under the old MAC', `${b64(JSON.stringify({ ...claims, exp: now + 99_999 }))}.${mac}`],
      ['no MAC', body],
      ['a MAC of garbage', `${body}.AAAA`],
      ['expired, correctly signed', await sealSession(key, { ...claims, exp: now - 1 })],
      ['signed with another key', await sealSession(otherKey, claims)],
      ['the admin token itself', TOKEN],
    ];
    for (const [why, v] of forged) {
      const r = await adminAs(`${name}=${v}`, 'GET', 'status');
      expect(r.status, why).toBe(401);
      expect(r.json.error.code, why).toBe('invalid_session');
      // The page asks to log in again, and clears the cookie.
      const page = await call(gateway, UI, { headers: { cookie: `${name}=${v}` } }, adminEnv);
      expect(await page.text()).toContain('Your session has ended');
      expect(page.headers.get('set-cookie')).toMatch(/Max-Age=0/);
    }
    // Rotating MESH_ADMIN_TOKEN ends the sessions made under the old one.
    const rotated = await adminAs(cookie, 'GET', 'status', { bindings: { ...env, MESH_ADMIN_TOKEN: 'r'.repeat(32) } });
    expect(rotated.status).toBe(401);
    // A request with an Authorization header is judged by that header alone.
    const wrongBearer = await adminAs(cookie, 'GET', 'status', {
      headers: { authorization: `Bearer ${'y'.repeat(32)}` },
    });
    expect(wrongBearer.status).toBe(401);
    expect(wrongBearer.json.error.code).toBe('invalid_token');
  });

  it('is not accepted on /_mesh/metrics (bearer only)', async () => {
    const { cookie } = await session();
    const res = await call(gateway, `${BASE}/_mesh/metrics`, { headers: { cookie } }, adminEnv);
    expect(res.status).toBe(401);
  });

  it('logout needs the CSRF header, then clears the cookie', async () => {
    const { cookie, csrf } = await session();
    const logout = (headers: Record<string, string>) =>
      call(gateway, `${UI}/logout`, { method: 'POST', headers: { cookie, ...headers } }, adminEnv);
    const refused = await logout({});
    expect(refused.status).toBe(403);
    expect(refused.headers.get('set-cookie')).toBeNull();
    const res = await logout({ 'x-meshwork-csrf': csrf });
    expect(res.status).toBe(200);
    const set = res.headers.get('set-cookie') ?? '';
    expect(set).toMatch(new RegExp(`^${COOKIE}=;`));
    expect(set).toContain('Max-Age=0');
    expect(set).toContain('Path=/_mesh');
    // Without a session there is nothing to end.
    const none = await call(
      gateway,
      `${UI}/logout`,
      { method: 'POST', headers: { 'x-meshwork-csrf': csrf } },
      adminEnv,
    );
    expect(none.status).toBe(401);
  });
});

describe('dashboard assets', () => {
  it('serves its scripts, styles and cytoscape from the gateway, with the same headers', async () => {
    for (const [name, type] of [
      ['dashboard.js', 'text/javascript'],
      ['dashboard.css', 'text/css'],
      ['cytoscape.esm.min.js', 'text/javascript'],
    ]) {
      const res = await call(gateway, `${UI}/assets/${name}`, {}, adminEnv);
      expect(res.status, name).toBe(200);
      expect(res.headers.get('content-type')).toContain(type!);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect((await res.text()).length).toBeGreaterThan(100);
    }
    expect((await call(gateway, `${UI}/assets/nope.js`, {}, adminEnv)).status).toBe(404);
    expect((await call(gateway, `${UI}/assets/constructor`, {}, adminEnv)).status).toBe(404);
  });
});

describe('where the dashboard is served', () => {
  it('without admin.dashboardHost: only on this machine, and a session cookie elsewhere means nothing', async () => {
    // A genuine session, as a login on this machine would have made it.
    const key = (await sessionKey({ adminToken: TOKEN, signingKey: harnessEnv.MESH_SIGNING_KEY }))!;
    const value = await sealSession(key, {
      actor: 'admin-token (dashboard)',
      kind: 'admin-token',
      exp: Math.floor(Date.now() / 1000) + 600,
      nonce: 'n',
    });
    const off = await call(gateway, UI, {}, harnessEnv);
    expect(off.status).toBe(404);
    expect(await off.text()).toContain('admin.dashboardHost');
    const cookie = { cookie: `__Secure-meshwork_session=${value}` };
    expect((await call(gateway, `${BASE}/_mesh/admin/status`, { headers: cookie }, harnessEnv)).status).toBe(401);
    const local = await call(gateway, 'http://127.0.0.1:8787/_mesh/ui', {}, harnessEnv);
    expect(local.status).toBe(200);
    expect(await local.text()).toContain('<form');
  });

  it('with admin.dashboardHost: there and nowhere else', async () => {
    const yaml = `${bundledConfig.sources![0]!.text}\nadmin:\n  dashboardHost: mesh-admin.example.com\n`;
    const { versionedBundle } = await import('../helpers.ts');
    const pinned = createGateway({ source: new MeshSource(await versionedBundle(yaml), { live: false }) });
    const there = await call(pinned, 'https://mesh-admin.example.com/_mesh/ui', {}, harnessEnv);
    expect(there.status).toBe(200);
    const res = await call(pinned, UI, {}, adminEnv);
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('served on mesh-admin.example.com only');
    expect((await call(pinned, 'http://127.0.0.1:8787/_mesh/ui', {}, harnessEnv)).status).toBe(404);
  });
});
