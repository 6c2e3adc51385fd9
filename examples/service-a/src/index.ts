/**
 * Example service-a: answers GET /service-a by calling service-b through the mesh client.
 */
import { Hono } from 'hono';
import { withMesh, type MeshVariables } from 'meshwork';

const app = new Hono<{ Variables: MeshVariables }>();

app.get('/service-a', async (c) => {
  const mesh = c.var.mesh;
  const res = await mesh.fetch('service-b', '/service-b');
  if (!res.ok) return res; // the mesh's JSON error, passed on as is
  const b = await res.json<{ service_b: string }>();
  return c.json({
    service_a: 'Hello from service-a',
    service_b: b.service_b,
    service_b_version: res.headers.get('x-service-version'),
    called_by: mesh.caller ?? null,
    user: mesh.user?.sub ?? null,
    request_id: mesh.requestId,
  });
});

// Shows what service-b learns when service-a calls it: caller service-a, and the same user.
app.get('/service-a/whoami-b', (c) => c.var.mesh.fetch('service-b', '/service-b/whoami'));

export default withMesh(app, { service: 'service-a' });
