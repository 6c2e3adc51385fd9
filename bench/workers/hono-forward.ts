// The floor for `forward`: a plain Hono worker forwarding every request over a service binding,
// nothing else. What a gateway costs at the least.
import { Hono } from 'hono';

const app = new Hono<{ Bindings: { SERVICE_B: Fetcher } }>();
app.all('/service-b/*', (c) => c.env.SERVICE_B.fetch(c.req.raw));
app.all('/service-b', (c) => c.env.SERVICE_B.fetch(c.req.raw));
export default app;
