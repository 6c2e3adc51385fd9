import { describe, expect, it } from 'vitest';
import { RateLimitPolicy } from '../../../src/config/schema.ts';
import { validateSources } from '../../../src/config/validate.ts';
import { placement } from '../../../src/ratelimit/placement.ts';
import { bucketKey, clientNetwork, compileLimit as compileSpec } from '../../../src/ratelimit/policy.ts';

/** A policy as written in routes/, with the schema's defaults filled in, compiled. */
const compileLimit = (name: string, written: Record<string, unknown>) =>
  compileSpec(name, RateLimitPolicy.parse(written), 'MESH_RATE_LIMITER');

describe('compiled policies', () => {
  it('defaults: token bucket, burst = limit, key [ip], cost 1, exact, fail open', () => {
    const c = compileLimit('p', { limit: 10, period: 60 });
    expect(c.params).toEqual({ algorithm: 'token-bucket', limit: 10, periodMs: 60_000, burst: 10 });
    expect(c).toMatchObject({
      cost: 1,
      key: [[{ kind: 'ip' }]],
      failOpen: true,
      lease: undefined,
      policyHeader: '"p";q=10;w=60',
    });
    expect(compileLimit('g', { algorithm: 'gcra', limit: 10, period: 1 }).params.burst).toBe(1);
  });

  it('applies overrides per key value, multiplier scaling limit and burst', () => {
    const c = compileLimit('p', {
      limit: 10,
      period: 1,
      burst: 20,
      overrides: { acme: { multiplier: 10 }, small: { limit: 1, burst: 2 } },
    });
    expect(c.overrides.get('acme')).toMatchObject({ limit: 100, burst: 200 });
    expect(c.overrides.get('small')).toMatchObject({ limit: 1, burst: 2 });
  });

  it('states sub-second periods per second in RateLimit-Policy', () => {
    expect(compileLimit('p', { limit: 1, period: 0.1 }).policyHeader).toBe('"p";q=10;w=1');
  });

  it('lease defaults to 10% of the burst for 1 s', () => {
    expect(compileLimit('p', { limit: 1000, period: 1, mode: 'lease' }).lease).toEqual({ size: 100, ttlMs: 1000 });
    expect(compileLimit('p', { limit: 5, period: 1, mode: 'lease' }).lease).toEqual({ size: 1, ttlMs: 1000 });
  });
});

describe('client addresses', () => {
  it('keys IPv4 by address and IPv6 by its /64', () => {
    expect(clientNetwork('203.0.113.7')).toBe('203.0.113.7');
    expect(clientNetwork('2001:db8:aaaa:bbbb:1:2:3:4')).toBe('2001:db8:aaaa:bbbb::/64');
    expect(clientNetwork('2001:DB8:aaaa:bbbb::99')).toBe('2001:db8:aaaa:bbbb::/64');
    expect(clientNetwork('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientNetwork('::1')).toBe('0:0:0:0::/64');
  });

  it('keys an IPv4-mapped IPv6 client as the IPv4 address it is, not one shared /64', () => {
    expect(clientNetwork('::ffff:198.51.100.8')).toBe('198.51.100.8');
    expect(clientNetwork('::FFFF:c633:6409')).toBe('198.51.100.9');
    expect(clientNetwork('0:0:0:0:0:ffff:198.51.100.8')).toBe('198.51.100.8');
  });

  it('keys text that is not an address (from a configured header) as given', () => {
    expect(clientNetwork('not:an:address:at:all:x')).toBe('not:an:address:at:all:x');
  });
});

describe('where buckets live (partitions)', () => {
  const key = (id: string) => ({ raw: id, id: `p|${id}`, shown: id });

  it('unset: one object per key, named after its enforcer, policy and key', () => {
    const c = compileLimit('p', { limit: 10, period: 1 });
    expect(c.partitions).toBeUndefined();
    expect(placement(c, key('alice'), 'gateway')).toEqual({ object: 'gateway|p|alice' });
    expect(placement(c, key('alice'), 'service-a')).toEqual({ object: 'svc:service-a|p|alice' });
  });

  it("a policy's own partitions win over the store's; keys spread over all of them, each key always in the same one", () => {
    const own = compileSpec('p', RateLimitPolicy.parse({ limit: 10, period: 1, partitions: 4 }), 'S', 16);
    expect(own.partitions).toBe(4);
    const fromStore = compileSpec('p', RateLimitPolicy.parse({ limit: 10, period: 1 }), 'S', 16);
    expect(fromStore.partitions).toBe(16);

    const objects = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const at = placement(own, key(`user-${i}`), 'gateway');
      expect(at.key).toBe(`p|user-${i}`); // the bucket within the object
      expect(placement(own, key(`user-${i}`), 'gateway')).toEqual(at);
      objects.add(at.object);
    }
    expect([...objects].sort()).toEqual(['gateway|p|#p0', 'gateway|p|#p1', 'gateway|p|#p2', 'gateway|p|#p3']);
  });

  it('partitions must be a whole number from 1 to 1024, in a policy or in rateLimitStore', () => {
    const fields = (text: string) => {
      const r = validateSources([{ name: 'routes/mesh.yaml', text }]);
      return r.ok ? [] : r.errors.map((e) => e.field);
    };
    const mesh = (extra: string) => `services:\n  svc:\n    backends: [{ binding: SVC }]\n${extra}`;
    expect(fields(mesh('rateLimits:\n  a: { limit: 1, period: 1s, partitions: 0 }\n'))).toEqual([
      'rateLimits.a.partitions',
    ]);
    expect(fields(mesh('rateLimits:\n  a: { limit: 1, period: 1s, partitions: 2.5 }\n'))).toEqual([
      'rateLimits.a.partitions',
    ]);
    expect(fields(mesh('rateLimitStore: { partitions: 2000 }\n'))).toEqual(['rateLimitStore.partitions']);
    expect(fields(mesh('rateLimitStore: { partitions: 64 }\nrateLimits:\n  a: { limit: 1, period: 1s }\n'))).toEqual(
      [],
    );
  });
});

describe('the key as metrics show it', () => {
  it("shows claim values as they are and a header's value only as the start of its hash", async () => {
    const c = compileLimit('p', { limit: 10, period: 1, key: ['header:x-api-key', 'claim:sub'] });
    const facts = {
      clientIp: null,
      route: 'r',
      caller: undefined,
      claims: { sub: 'alice' },
      issuer: 'idp',
      headers: new Headers({ 'x-api-key': 'sk_live_secret_value' }),
    };
    const key = await bucketKey(c, facts);
    expect(key.raw).toBe('sk_live_secret_value|alice');
    expect(key.shown).toMatch(/^#[0-9a-f]{12}\|alice$/);
    expect(key.shown).not.toContain('sk_live');
    // The same key value shows the same way (a hot key stays one row).
    expect((await bucketKey(c, facts)).shown).toBe(key.shown);
  });
});
