/** Registering and deregistering endpoints by hand (backends outside Workers). */
import type { Hono } from 'hono';
import { errorResponse } from '../../core/errors.ts';
import type { InstanceInfo } from '../../registry/types.ts';
import type { MeshRegistry } from '../registry/object.ts';
import { INSTANCE_SHAPE, InstanceBody } from './bodies.ts';
import { activeConfig } from './config.ts';
import { readBody, rid, type AdminContext, type AdminEnv } from './context.ts';

export function instanceRoutes(
  app: Hono<AdminEnv>,
  registry: (c: AdminContext) => DurableObjectStub<MeshRegistry>,
): void {
  app.post('/instances', async (c) => {
    const body = await readBody(c, InstanceBody, INSTANCE_SHAPE);
    if (body instanceof Response) return body;
    const reg = registry(c);
    // The registry's config, not this isolate's copy: a service applied a moment ago counts.
    const services = (await activeConfig(reg)).bundle.config.services;
    if (!services[body.service]) {
      return errorResponse(
        400,
        'bad_request',
        `"service" must name a service in the config (${Object.keys(services).join(', ')})`,
        rid(c),
      );
    }
    const info: InstanceInfo = body;
    const inst = await reg.register(info, c.get('actor'));
    await reg.publish();
    return c.json(inst, 201);
  });

  app.delete('/instances/:id{.+}', async (c) => {
    // Hono hands the parameter over decoded already.
    const id = c.req.param('id');
    const reg = registry(c);
    if (!(await reg.deregister(id, c.get('actor'))))
      return errorResponse(404, 'not_found', `no instance "${id}"`, rid(c));
    await reg.publish();
    return c.json({ removed: id });
  });
}
