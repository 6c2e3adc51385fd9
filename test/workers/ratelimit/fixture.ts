/**
 * Rate limits in workerd, through the real gateway (and the example services' wrappers), with
 * the real RateLimiter Durable Objects hosted by the gateway bundle: exactness under concurrency
 * in both modes, responses and headers, algorithms, keys, east-west limits, store failure.
 *
 * Durable Object state lasts for the whole run (and is shared with the other test files), so
 * every policy name carries this run's id and every key value is unique to its test.
 */
import { env } from 'cloudflare:test';
import { expect } from 'vitest';
import { createGateway } from '../../../src/gateway/app.ts';
import { call, planFrom } from '../helpers.ts';

export const BASE = 'https://gw.example.com';

export const RUN = crypto.randomUUID().slice(0, 8);

/** A policy name unique to this run. */
export const P = (name: string) => `${name}-${RUN}`;

export type Gateway = ReturnType<typeof createGateway>;

export type MeshError = { error: { code: string; message: string; requestId: string } };

export const ECHO = { echo: { backends: [{ binding: 'ECHO' }] } };

/** A gateway for a mesh given as an object (JSON is YAML), compiled as the control plane does. */
export function gatewayFor(config: Record<string, unknown>): Gateway {
  // The counting backends run on this machine: loopback URL backends are allowed.
  return createGateway({
    plan: planFrom(JSON.stringify({ services: ECHO, network: { allowLoopbackBackends: true }, ...config })),
  });
}

export function get(gateway: Gateway, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return call(gateway, `${BASE}${path}`, { headers });
}

/** Statuses of `n` requests sent one after another. */
export async function statuses(
  gateway: Gateway,
  n: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await get(gateway, path, headers);
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
}

/**
 * The items of a RateLimit or RateLimit-Policy field (draft-ietf-httpapi-ratelimit-headers:
 * a list of quoted policy names with integer parameters) by policy name.
 */
export function items(field: string | null, params: 'q;w' | 'r;t'): Record<string, Record<string, number>> {
  const [a, b] = params.split(';');
  const item = `"[A-Za-z0-9._-]+";${a}=\\d+;${b}=\\d+`;
  expect(field).toMatch(new RegExp(`^${item}(, ${item})*$`));
  const out: Record<string, Record<string, number>> = {};
  for (const part of field!.split(', ')) {
    const [name, ...kv] = part.split(';');
    out[JSON.parse(name!) as string] = Object.fromEntries(kv.map((p) => [p.split('=')[0]!, Number(p.split('=')[1])]));
  }
  return out;
}

export async function expectLimited(res: Response, names: string[]): Promise<MeshError> {
  expect(res.status).toBe(429);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as MeshError;
  expect(body).toEqual({
    error: { code: 'rate_limited', message: expect.any(String), requestId: res.headers.get('x-request-id') },
  });
  for (const name of names) expect(body.error.message).toContain(`"${name}"`);
  return body;
}

/** A URL backend on the test server that counts what reaches it (its /jwks/<name> endpoint). */
export function countingBackend(name: string) {
  return {
    service: { backends: [{ url: `${env.UPSTREAM_URL}/jwks/${name}` }] },
    reached: async () =>
      ((await (await fetch(`${env.UPSTREAM_URL}/jwks-control/${name}`)).json()) as { fetches: number }).fetches,
  };
}

/** The most a token bucket may admit in `ms`: burst + limit × ms / period. */
export const bound = (burst: number, limit: number, periodMs: number, ms: number) =>
  Math.floor(burst + (limit * ms) / periodMs);
