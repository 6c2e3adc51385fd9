/**
 * The do-it-yourself peer: how people build this on Workers today, in one Hono worker. The
 * hono/jwk middleware (fetching the JWKS from its URI on every request), a Durable Object counter
 * per request for the rate limit, then the service binding. Same service, same token, same
 * limit as the mesh's `full` scenario.
 */
import { DurableObject } from 'cloudflare:workers';
import { Hono } from 'hono';
import { jwk } from 'hono/jwk';

export class Counter extends DurableObject {
  async hit(limit: number): Promise<boolean> {
    const n = ((await this.ctx.storage.get<number>('n')) ?? 0) + 1;
    await this.ctx.storage.put('n', n);
    return n <= limit;
  }
}

type Env = { JWKS_URI: string; COUNTER: DurableObjectNamespace<Counter>; SERVICE_B: Fetcher };

const app = new Hono<{ Bindings: Env; Variables: { jwtPayload: { sub?: string } } }>();

app.use('/service-b', jwk({ jwks_uri: (c) => c.env.JWKS_URI, alg: ['ES256'] }));

app.get('/service-b', async (c) => {
  const sub = c.get('jwtPayload').sub ?? 'anonymous';
  const counter = c.env.COUNTER.get(c.env.COUNTER.idFromName(sub));
  if (!(await counter.hit(1_000_000_000))) return c.json({ error: 'rate limited' }, 429);
  return c.env.SERVICE_B.fetch(c.req.raw);
});

export default app;
