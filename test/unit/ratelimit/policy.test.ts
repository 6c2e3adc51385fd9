import { describe, expect, it } from 'vitest';
import { RateLimitPolicy } from '../../../src/config/schema.ts';
import { clientNetwork, compileLimit as compileSpec } from '../../../src/ratelimit/policy.ts';

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
