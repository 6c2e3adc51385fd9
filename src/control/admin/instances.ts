/** Registering and deregistering endpoints by hand (backends outside Workers). */
import type { Hono } from 'hono';
import { textOf } from '../../core/bindings.ts';
import { errorResponse } from '../../core/errors.ts';
import { refusedAddress } from '../../config/addresses.ts';
import { Network } from '../../config/schema.ts';
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
    const config = (await activeConfig(reg)).bundle.config;
    const services = config.services;
    if (!services[body.service]) {
      return errorResponse(
        400,
        'bad_request',
        `"service" must name a service in the config (${Object.keys(services).join(', ')})`,
        rid(c),
      );
    }
    // The same address rules as the config's own URL backends, with its network settings.
    const network = Network.safeParse(config.network ?? {});
    const why =
      body.url === undefined || !network.success
        ? undefined
        : refusedAddress(new URL(body.url), {
            allowPrivate: network.data.allowPrivateBackends,
            allowLoopback: network.data.allowLoopbackBackends || textOf(c.env, 'MESHWORK_DEV') === '1',
          });
    if (why) return errorResponse(400, 'bad_request', `"url": ${why}`, rid(c));
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
