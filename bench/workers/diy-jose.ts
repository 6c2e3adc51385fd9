/**
 * The peer a skilled user would build instead of a mesh: one Hono worker that verifies the user's
 * JWT with jose (`jwtVerify` with `createRemoteJWKSet`, which fetches the key set once and keeps
 * it), checks issuer, audience, expiry and the scope, takes from a token bucket in a Durable
 * Object per user (one call per request, the state written per decision as such a counter
 * usually is), and forwards over the service binding. Same token, same limit as `full`.
 */
import { DurableObject } from 'cloudflare:workers';
import { Hono } from 'hono';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBucket extends DurableObject {
  #bucket: Bucket | undefined;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    void ctx.blockConcurrencyWhile(async () => {
      this.#bucket = await ctx.storage.get<Bucket>('b');
    });
  }

  take(limit: number, periodMs: number): boolean {
    const now = Date.now();
    const b = this.#bucket ?? { tokens: limit, at: now };
    const tokens = Math.min(limit, b.tokens + ((now - b.at) * limit) / periodMs);
    const allowed = tokens >= 1;
    this.#bucket = { tokens: allowed ? tokens - 1 : tokens, at: now };
    void this.ctx.storage.put('b', this.#bucket);
    return allowed;
  }
}

type Env = { JWKS_URI: string; ISSUER: string; BUCKET: DurableObjectNamespace<TokenBucket>; SERVICE_B: Fetcher };

let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

const app = new Hono<{ Bindings: Env; Variables: { user: JWTPayload } }>();

app.use('/service-b', async (c, next) => {
  const m = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '');
  if (!m) return c.json({ error: 'unauthorized' }, 401);
  jwks ??= createRemoteJWKSet(new URL(c.env.JWKS_URI));
  try {
    const { payload } = await jwtVerify(m[1]!, jwks, {
      issuer: c.env.ISSUER,
      audience: 'meshwork',
      algorithms: ['ES256'],
      requiredClaims: ['exp'],
    });
    const scope = typeof payload.scope === 'string' ? payload.scope : '';
    if (!scope.split(' ').includes('read:b')) return c.json({ error: 'forbidden' }, 403);
    c.set('user', payload);
  } catch {
    return c.json({ error: 'invalid token' }, 401);
  }
  await next();
});

app.get('/service-b', async (c) => {
  const sub = c.get('user').sub ?? 'anonymous';
  const bucket = c.env.BUCKET.get(c.env.BUCKET.idFromName(sub));
  if (!(await bucket.take(1_000_000_000, 1000))) return c.json({ error: 'rate limited' }, 429);
  return c.env.SERVICE_B.fetch(c.req.raw);
});

export default app;
