/**
 * Example service-b. The same code is deployed twice (wrangler.toml -> v1,
 * wrangler.v2.toml -> v2); VERSION tells them apart.
 */
import { Hono } from 'hono';
import { withMesh, type MeshVariables } from '../../../src/wrapper/index.ts';

type Env = { VERSION: string };

const app = new Hono<{ Bindings: Env; Variables: MeshVariables }>();

app.get('/service-b', (c) => {
  c.header('x-service-version', c.env.VERSION);
  return c.json({ service_b: 'Hello from service-b' });
});

export default withMesh(app, { service: 'service-b' });
