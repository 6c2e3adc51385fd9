/**
 * Who may use the admin API: the holder of MESH_ADMIN_TOKEN (a wrangler secret of at least 16
 * characters, compared in constant time), or a JWT from one of `admin.issuers` holding
 * `admin.scope`. Anything else is a 401 (403 for a valid token without the scope), and nothing
 * is changed.
 *
 * checkAdminCredential is that one check; the bearer path and the dashboard's login both use it.
 * The dashboard's session cookie (ui/session.ts) stands in for the credential where the caller
 * allows it (adminAuth's `sessions`): for reading, and for writing with the session's CSRF token.
 */
import type { MiddlewareHandler } from 'hono';
import { textOf, type MeshBindings } from '../../core/bindings.ts';
import { errorResponse } from '../../core/errors.ts';
import { sameSecret } from '../../core/hash.ts';
import { ACTOR_HEADER } from '../../core/headers.ts';
import { requestIdFrom } from '../../core/trace.ts';
import type { Plan } from '../../plan/compile.ts';
import type { MeshSource } from '../../registry/source.ts';
import {
  cookieOf,
  CSRF_HEADER,
  csrfMatches,
  openSession,
  sessionCookieName,
  sessionKey,
  type SessionClaims,
} from '../ui/session.ts';
import type { AdminEnv } from './context.ts';

type WaitUntil = (p: Promise<unknown>) => void;

/** What a valid credential proved. A JWT's expiry bounds a session made from it. */
export type AdminCredential =
  | { ok: true; kind: 'admin-token' }
  | { ok: true; kind: 'jwt'; issuer: string; actor: string; exp: number }
  | { ok: false; status: 401 | 403; code: 'invalid_token' | 'insufficient_scope'; message: string };

/** MESH_ADMIN_TOKEN when it is long enough to be safe; a shorter one admits nobody. */
export function adminTokenOf(env: MeshBindings): string | undefined {
  const token = textOf(env, 'MESH_ADMIN_TOKEN');
  return token !== undefined && token.length >= 16 ? token : undefined;
}

/** The one check of an admin credential, whether it came as a bearer token or through the login form. */
export async function checkAdminCredential(
  token: string,
  env: MeshBindings,
  source: MeshSource | undefined,
  waitUntil: WaitUntil,
): Promise<AdminCredential> {
  const adminToken = adminTokenOf(env);
  if (adminToken !== undefined && (await sameSecret(token, adminToken))) return { ok: true, kind: 'admin-token' };
  // Brought up to date like a proxied request's: admin calls may be all an isolate receives.
  if (source) {
    const { plan } = await source.get(env, waitUntil);
    const admin = plan.config.admin;
    if (admin.issuers) {
      const io = source.runtime.keyIo(env, waitUntil, plan.identity);
      // Its own audience: a user token of the same issuer is not an admin token.
      const r = await source.runtime.auth.verify(plan.auth, token, new Set(admin.issuers), io, {
        audience: admin.audience,
      });
      if (r.ok && r.user.scopes.includes(admin.scope))
        return {
          ok: true,
          kind: 'jwt',
          issuer: r.user.issuer,
          actor: `${r.user.issuer}:${r.user.sub ?? '?'}`,
          exp: r.user.exp,
        };
      if (r.ok)
        return {
          ok: false,
          status: 403,
          code: 'insufficient_scope',
          message: `admin tokens need scope ${admin.scope}`,
        };
    }
  }
  return { ok: false, status: 401, code: 'invalid_token', message: 'not a valid admin token' };
}

/** The key dashboard sessions are signed with (see ui/session.ts); undefined when the gateway has no admin secret. */
export function sessionKeyOf(env: MeshBindings, plan: Plan | undefined): Promise<CryptoKey> | undefined {
  return sessionKey({
    adminToken: adminTokenOf(env),
    signingKey: textOf(env, plan?.identity.signingKey.env ?? 'MESH_SIGNING_KEY'),
  });
}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * Whether the dashboard and its session cookie work on this request's host. Every backend a
 * route serves shares the gateway's origin, and script on a page of that origin could read the
 * dashboard and act with its session: so the dashboard lives on `admin.dashboardHost` alone,
 * and without one only on this machine (local development).
 */
export function dashboardHere(request: Request, env: MeshBindings, plan: Plan | undefined): boolean {
  const host = new URL(request.url).hostname;
  const only = plan?.config.admin.dashboardHost;
  if (only !== undefined) return host === only;
  return LOOPBACK.has(host) || textOf(env, 'MESHWORK_DEV') === '1';
}

export function isHttps(request: Request): boolean {
  return new URL(request.url).protocol === 'https:';
}

export interface DashboardSession {
  claims: SessionClaims;
  /** The cookie's value (what the CSRF token is derived from). */
  value: string;
  key: CryptoKey;
}

export type SessionLookup = { found: false } | { found: true; session: DashboardSession | undefined };

/**
 * The request's dashboard session: not found (no cookie), or found and valid, or found and not
 * (forged, expired, signed with a key since rotated, or a JWT session whose issuer is no longer
 * an admin issuer).
 */
export async function dashboardSession(
  request: Request,
  env: MeshBindings,
  source: MeshSource | undefined,
  waitUntil: WaitUntil,
): Promise<SessionLookup> {
  const value = cookieOf(request.headers.get('cookie'), sessionCookieName(isHttps(request)));
  if (value === undefined) return { found: false };
  const plan = source ? (await source.get(env, waitUntil)).plan : undefined;
  // Elsewhere the cookie means nothing (it was not set there, or was planted by a page there).
  if (!dashboardHere(request, env, plan)) return { found: false };
  const key = await sessionKeyOf(env, plan);
  const claims = key && (await openSession(key, value, Math.floor(Date.now() / 1000)));
  if (!key || !claims) return { found: true, session: undefined };
  if (claims.kind === 'admin-token' && adminTokenOf(env) === undefined) return { found: true, session: undefined };
  if (claims.kind === 'jwt' && !plan?.config.admin.issuers?.includes(claims.issuer!))
    return { found: true, session: undefined };
  return { found: true, session: { claims, value, key } };
}

/** Methods a session may use on its cookie alone: they change nothing. */
const SAFE_METHODS = new Set(['GET', 'HEAD']);

export interface AdminAuthOptions {
  /**
   * Also accept the dashboard's session cookie (the admin API does; endpoints for machines,
   * like metrics scrapes, do not): GET and HEAD on the cookie, any other method only with the
   * session's CSRF token in CSRF_HEADER. A request with an Authorization header is judged by it.
   */
  sessions?: boolean;
}

export function adminAuth(source: MeshSource | undefined, options: AdminAuthOptions = {}): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
    const requestId = requestIdFrom(c.req.raw.headers);
    c.set('requestId', requestId);
    const challenge = { 'www-authenticate': 'Bearer realm="meshwork-admin"' };
    const waitUntil: WaitUntil = (p) => c.executionCtx.waitUntil(p);
    const authorization = c.req.header('authorization');
    if (options.sessions && !authorization) {
      const lookup = await dashboardSession(c.req.raw, c.env, source, waitUntil);
      if (lookup.found) {
        const { session } = lookup;
        if (!session)
          return errorResponse(
            401,
            'invalid_session',
            'the dashboard session is not valid (expired or ended): log in again',
            requestId,
            challenge,
          );
        if (
          !SAFE_METHODS.has(c.req.method) &&
          !(await csrfMatches(session.key, session.value, c.req.header(CSRF_HEADER)))
        )
          return errorResponse(
            403,
            'csrf_failed',
            `a dashboard session changes things only with its ${CSRF_HEADER} header`,
            requestId,
          );
        c.set('actor', session.claims.actor);
        return next();
      }
    }
    const m = /^Bearer +(\S+)\s*$/i.exec(authorization ?? '');
    if (!m)
      return errorResponse(
        401,
        'unauthorized',
        'the admin API needs Authorization: Bearer <admin token>',
        requestId,
        challenge,
      );
    const r = await checkAdminCredential(m[1]!, c.env, source, waitUntil);
    if (!r.ok) return errorResponse(r.status, r.code, r.message, requestId, r.status === 401 ? challenge : undefined);
    if (r.kind === 'jwt') c.set('actor', r.actor);
    else {
      // Who, for the audit log: the CLI sends the local user; it is a label, the token is the proof.
      const who = (c.req.header(ACTOR_HEADER) ?? '').replace(/[^\w.@-]/g, '').slice(0, 64);
      c.set('actor', who ? `admin-token (${who})` : 'admin-token');
    }
    return next();
  };
}
