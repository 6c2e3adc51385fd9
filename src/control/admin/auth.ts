/**
 * Who may use the admin API: the holder of MESH_ADMIN_TOKEN (a wrangler secret of at least 16
 * characters, compared in constant time), or a JWT from one of `admin.issuers` holding
 * `admin.scope`. Anything else is a 401 (403 for a valid token without the scope), and nothing
 * is changed.
 */
import type { MiddlewareHandler } from 'hono';
import { textOf } from '../../core/bindings.ts';
import { errorResponse } from '../../core/errors.ts';
import { sameSecret } from '../../core/hash.ts';
import { ACTOR_HEADER } from '../../core/headers.ts';
import { requestIdFrom } from '../../core/trace.ts';
import type { MeshSource } from '../../registry/source.ts';
import type { AdminEnv } from './context.ts';

export function adminAuth(source: MeshSource | undefined): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
    const requestId = requestIdFrom(c.req.raw.headers);
    c.set('requestId', requestId);
    const challenge = { 'www-authenticate': 'Bearer realm="meshwork-admin"' };
    const m = /^Bearer +(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
    if (!m)
      return errorResponse(
        401,
        'unauthorized',
        'the admin API needs Authorization: Bearer <admin token>',
        requestId,
        challenge,
      );
    const token = m[1]!;
    const adminToken = textOf(c.env, 'MESH_ADMIN_TOKEN');
    if (adminToken !== undefined && adminToken.length >= 16 && (await sameSecret(token, adminToken))) {
      // Who, for the audit log: the CLI sends the local user; it is a label, the token is the proof.
      const who = (c.req.header(ACTOR_HEADER) ?? '').replace(/[^\w.@-]/g, '').slice(0, 64);
      c.set('actor', who ? `admin-token (${who})` : 'admin-token');
      return next();
    }
    // Brought up to date like a proxied request's: admin calls may be all an isolate receives.
    if (source) {
      const { plan } = await source.get(c.env, (p) => c.executionCtx.waitUntil(p));
      const admin = plan.config.admin;
      if (admin.issuers) {
        const io = source.runtime.keyIo(c.env, (p) => c.executionCtx.waitUntil(p), plan.identity);
        // Its own audience: a user token of the same issuer is not an admin token.
        const r = await source.runtime.auth.verify(plan.auth, token, new Set(admin.issuers), io, {
          audience: admin.audience,
        });
        if (r.ok && r.user.scopes.includes(admin.scope)) {
          c.set('actor', `${r.user.issuer}:${r.user.sub ?? '?'}`);
          return next();
        }
        if (r.ok) return errorResponse(403, 'insufficient_scope', `admin tokens need scope ${admin.scope}`, requestId);
      }
    }
    return errorResponse(401, 'invalid_token', 'not a valid admin token', requestId, challenge);
  };
}
