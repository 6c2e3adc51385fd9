// service-a without the mesh: calls service-b over a plain service binding and answers like the
// example service-a (east-west baseline).
import { Hono } from 'hono';

const app = new Hono<{ Bindings: { SERVICE_B: Fetcher } }>();
app.get('/service-a', async (c) => {
  const res = await c.env.SERVICE_B.fetch('http://service-b/service-b');
  const b = await res.json<{ service_b: string }>();
  return c.json({ service_a: 'Hello from service-a', service_b: b.service_b });
});
export default app;
