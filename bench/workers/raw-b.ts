// service-b without the mesh: the same answer from a plain Hono worker (east-west baseline).
import { Hono } from 'hono';

const app = new Hono();
app.get('/service-b', (c) => c.json({ service_b: 'Hello from service-b' }));
export default app;
