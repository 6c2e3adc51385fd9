/**
 * Example service-b. The same code is deployed twice (wrangler.toml -> v1,
 * wrangler.v2.toml -> v2); VERSION tells them apart.
 */
import { Hono } from 'hono';
import { withMesh, type MeshVariables } from 'meshwork';

type Env = { VERSION: string };

const app = new Hono<{ Bindings: Env; Variables: MeshVariables }>();

app.get('/service-b', (c) => {
  c.header('x-service-version', c.env.VERSION);
  return c.json({ service_b: 'Hello from service-b' });
});

// What the mesh told service-b about this call: the calling service and the end user.
app.get('/service-b/whoami', (c) => {
  const { caller, user } = c.var.mesh;
  return c.json({
    service: 'service-b',
    version: c.env.VERSION,
    caller: caller ?? null,
    user: user ? { sub: user.sub ?? null, scopes: user.scopes } : null,
  });
});

export default withMesh<Env>(app, { service: 'service-b', version: (env) => env.VERSION });
