/**
 * The control-plane API, served by the gateway under /_mesh/admin/ (bearer token: the
 * MESH_ADMIN_TOKEN secret, or a JWT from admin.issuers with admin.scope).
 *
 *   GET    status            config in force, every service's endpoints and their health
 *   GET    config            the config in force (its routes files and the validated form)
 *   POST   config            apply { files: [{ name, text }], message? } (validated like `meshwork validate`)
 *   POST   diff              { files } what applying them would change
 *   POST   rollback          { revision } | { version } | {} back to an earlier config (default: the previous one)
 *   GET    history           config revisions and the audit log
 *   POST   instances         register an endpoint { service, version?, endpoint?, binding | url, weight?, healthPath? }
 *   DELETE instances/:key    deregister (key: service@version/endpoint)
 *   GET    telemetry         the last minute per edge (rate, errors, latency) and rate-limit hot keys
 */
import { Hono } from 'hono';
import { errorResponse } from '../../core/errors.ts';
import type { MeshSource } from '../../registry/source.ts';
import { registryOf, type MeshRegistry } from '../registry/object.ts';
import { adminAuth } from './auth.ts';
import { configRoutes } from './config.ts';
import { rid, type AdminContext, type AdminEnv } from './context.ts';
import { instanceRoutes } from './instances.ts';
import { statusRoutes } from './status.ts';
import { telemetryRoutes } from './telemetry.ts';

export function adminApp(source: MeshSource | undefined): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();
  // The dashboard's session cookie too (reads; writes with its CSRF header).
  app.use('*', adminAuth(source, { sessions: true }));
  app.use('*', async (c, next) => {
    if (!registryOf(c.env))
      return errorResponse(503, 'no_registry', 'the gateway has no MESH_REGISTRY Durable Object binding', rid(c));
    return next();
  });
  const registry = (c: AdminContext): DurableObjectStub<MeshRegistry> => registryOf(c.env)!;
  statusRoutes(app, registry);
  configRoutes(app, registry);
  instanceRoutes(app, registry);
  telemetryRoutes(app);
  app.all('*', (c) => errorResponse(404, 'not_found', `no admin endpoint ${c.req.method} ${c.req.path}`, rid(c)));
  return app;
}
