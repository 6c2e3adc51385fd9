/**
 * The mesh dashboard, served by the gateway under /_mesh/ui:
 *
 *   GET  /               the dashboard for a session, else the login form
 *   POST /login          form field `token`: the admin credential, exchanged for a session cookie
 *   POST /logout         ends the session (needs its CSRF header)
 *   GET  /assets/<name>  the page's scripts and styles, cytoscape among them
 *
 * The page reads the admin API (/_mesh/admin/status, config, telemetry) with the session cookie.
 * The credential is checked by the admin API's own check (admin/auth.ts) and never kept: the
 * cookie is a signed session (session.ts), HttpOnly, SameSite=Strict, for /_mesh only.
 */
import { Hono, type Context } from 'hono';
import type { MeshBindings } from '../../core/bindings.ts';
import { errorResponse } from '../../core/errors.ts';
import { requestIdFrom } from '../../core/trace.ts';
import type { MeshSource } from '../../registry/source.ts';
import { checkAdminCredential, dashboardHere, dashboardSession, isHttps, sessionKeyOf } from '../admin/auth.ts';
import { assetResponse, dashboardPage, loginPage, SECURITY_HEADERS, UI_BASE } from './pages.ts';
import {
  clearedSessionCookie,
  CSRF_HEADER,
  csrfMatches,
  csrfToken,
  newNonce,
  sealSession,
  SESSION_TTL_SECONDS,
  sessionCookie,
  type SessionClaims,
} from './session.ts';

type UiEnv = { Bindings: MeshBindings };
type UiContext = Context<UiEnv>;

/** A pasted token, with room for a large JWT; a bigger body is not a login. */
const MAX_LOGIN_BYTES = 16 * 1024;

/**
 * Login CSRF: a form on another site could post a credential of the attacker's and log the
 * operator into a session they did not choose. Browsers send Origin with every POST; it must be
 * this gateway's. (Without Origin, only a browser's own Sec-Fetch-Site: same-origin will do.)
 */
function sameOrigin(request: Request): boolean {
  const origin = request.headers.get('origin');
  if (origin !== null) return origin === new URL(request.url).origin;
  return request.headers.get('sec-fetch-site') === 'same-origin';
}

function waitUntilOf(c: UiContext): (p: Promise<unknown>) => void {
  return (p) => c.executionCtx.waitUntil(p);
}

async function login(c: UiContext, source: MeshSource | undefined): Promise<Response> {
  const request = c.req.raw;
  if (!sameOrigin(request)) return loginPage('Refused: the login was not sent from this page.', 403);
  const type = c.req.header('content-type') ?? '';
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded'))
    return loginPage('The login form posts application/x-www-form-urlencoded.', 415);
  if (Number(c.req.header('content-length') ?? 0) > MAX_LOGIN_BYTES)
    return loginPage('That is too long to be an admin credential.', 413);
  const body = await c.req.arrayBuffer();
  if (body.byteLength > MAX_LOGIN_BYTES) return loginPage('That is too long to be an admin credential.', 413);
  const token = new URLSearchParams(new TextDecoder().decode(body)).get('token')?.trim() ?? '';
  if (!token) return loginPage('Paste the admin token (MESH_ADMIN_TOKEN) or an admin JWT.', 400);
  const waitUntil = waitUntilOf(c);
  const checked = await checkAdminCredential(token, c.env, source, waitUntil);
  if (!checked.ok)
    return loginPage(
      checked.status === 403
        ? `That token is valid but not an admin's: ${checked.message}.`
        : 'Not a valid admin credential.',
      checked.status,
    );
  const plan = source ? (await source.get(c.env, waitUntil)).plan : undefined;
  const key = await sessionKeyOf(c.env, plan);
  if (!key) return loginPage('This gateway has no secret to sign sessions with (MESH_SIGNING_KEY).', 503);
  const now = Math.floor(Date.now() / 1000);
  // A session made from a JWT ends with it: logging in must not outlive the credential.
  const exp = Math.min(now + SESSION_TTL_SECONDS, checked.kind === 'jwt' ? checked.exp : Infinity);
  // (Verification allows a little clock skew past exp: such a token would make a dead session.)
  if (exp <= now) return loginPage('That token has expired.', 401);
  const claims: SessionClaims =
    checked.kind === 'jwt'
      ? { actor: `${checked.actor} (dashboard)`, kind: 'jwt', issuer: checked.issuer, exp, nonce: newNonce() }
      : { actor: 'admin-token (dashboard)', kind: 'admin-token', exp, nonce: newNonce() };
  const value = await sealSession(key, claims);
  // 303: the browser follows with a GET, so reloading the page does not post the token again.
  return new Response(null, {
    status: 303,
    headers: {
      location: UI_BASE,
      'set-cookie': sessionCookie(value, { secure: isHttps(request), maxAge: exp - now }),
    },
  });
}

async function logout(c: UiContext, source: MeshSource | undefined): Promise<Response> {
  const request = c.req.raw;
  const requestId = requestIdFrom(request.headers);
  const cleared = { 'set-cookie': clearedSessionCookie(isHttps(request)) };
  const lookup = await dashboardSession(request, c.env, source, waitUntilOf(c));
  const session = lookup.found ? lookup.session : undefined;
  if (!session) return errorResponse(401, 'invalid_session', 'no dashboard session to end', requestId, cleared);
  // Else any site could log the operator out.
  if (!(await csrfMatches(session.key, session.value, c.req.header(CSRF_HEADER))))
    return errorResponse(403, 'csrf_failed', `logging out needs the session's ${CSRF_HEADER} header`, requestId);
  return new Response(JSON.stringify({ loggedOut: true }), {
    headers: { 'content-type': 'application/json; charset=utf-8', ...cleared },
  });
}

async function home(c: UiContext, source: MeshSource | undefined): Promise<Response> {
  const request = c.req.raw;
  const lookup = await dashboardSession(request, c.env, source, waitUntilOf(c));
  if (!lookup.found) return loginPage(undefined);
  const { session } = lookup;
  if (!session)
    return loginPage('Your session has ended. Log in again.', 200, {
      'set-cookie': clearedSessionCookie(isHttps(request)),
    });
  return dashboardPage(await csrfToken(session.key, session.value), session.claims.actor, session.claims.exp);
}

export function uiApp(source: MeshSource | undefined): Hono<UiEnv> {
  const app = new Hono<UiEnv>();
  app.use('*', async (c, next) => {
    const plan = source ? (await source.get(c.env, waitUntilOf(c))).plan : undefined;
    if (!dashboardHere(c.req.raw, c.env, plan))
      c.res = errorResponse(
        404,
        'not_found',
        plan?.config.admin.dashboardHost
          ? `the dashboard is served on ${plan.config.admin.dashboardHost} only`
          : 'the dashboard is off on this host: set admin.dashboardHost to a host no route serves',
        requestIdFrom(c.req.raw.headers),
      );
    else await next();
    // Every answer of the dashboard, errors included.
    for (const [name, value] of SECURITY_HEADERS) c.res.headers.set(name, value);
  });
  app.get('/', (c) => home(c, source));
  app.post('/login', (c) => login(c, source));
  app.post('/logout', (c) => logout(c, source));
  app.get('/assets/:name', (c) => {
    const res = assetResponse(c.req.param('name'));
    return (
      res ??
      errorResponse(404, 'not_found', `no dashboard asset ${c.req.param('name')}`, requestIdFrom(c.req.raw.headers))
    );
  });
  app.all('*', (c) => {
    // The page lives at /_mesh/ui; /_mesh/ui/ is the same page.
    if (c.req.method === 'GET' && c.req.path === `${UI_BASE}/`) return c.redirect(UI_BASE, 308);
    return errorResponse(
      404,
      'not_found',
      `no dashboard endpoint ${c.req.method} ${c.req.path}`,
      requestIdFrom(c.req.raw.headers),
    );
  });
  return app;
}
