import { describe, expect, it } from 'vitest';
import type { MatchSpec } from '../../../src/config/schema.ts';
import { Router, type RouterEntry } from '../../../src/router/router.ts';

type E = { name: string; hostnames?: string[]; matches?: MatchSpec[] };

function router(...entries: E[]): Router<string> {
  return new Router<string>(
    entries.map((e): RouterEntry<string> => ({
      route: e.name,
      ...(e.hostnames ? { hostnames: e.hostnames } : {}),
      ...(e.matches ? { matches: e.matches } : {}),
    })),
  );
}

function find(
  r: Router<string>,
  target: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): string | undefined {
  const url = new URL(target.startsWith('http') ? target : `https://example.com${target}`);
  return r.find({
    host: url.hostname,
    path: url.pathname,
    method: init.method ?? 'GET',
    headers: new Headers(init.headers),
    url,
  })?.route;
}

describe('path matching', () => {
  it('matches exact paths only exactly', () => {
    const r = router({ name: 'x', matches: [{ path: { exact: '/a/b' } }] });
    expect(find(r, '/a/b')).toBe('x');
    expect(find(r, '/a/b/')).toBeUndefined();
    expect(find(r, '/a/bc')).toBeUndefined();
    expect(find(r, '/A/b')).toBeUndefined();
  });

  it('matches prefixes by whole path segments', () => {
    const r = router({ name: 'api', matches: [{ path: { prefix: '/api' } }] });
    expect(find(r, '/api')).toBe('api');
    expect(find(r, '/api/')).toBe('api');
    expect(find(r, '/api/users/1')).toBe('api');
    expect(find(r, '/apix')).toBeUndefined();
    expect(find(r, '/')).toBeUndefined();
  });

  it('treats a trailing slash on a prefix as the same prefix', () => {
    const r = router({ name: 'api', matches: [{ path: { prefix: '/api/' } }] });
    expect(find(r, '/api')).toBe('api');
    expect(find(r, '/api/x')).toBe('api');
  });

  it('matches everything when a route has no matches', () => {
    const r = router({ name: 'all' });
    expect(find(r, '/')).toBe('all');
    expect(find(r, '/anything/at/all?x=1', { method: 'DELETE' })).toBe('all');
  });

  it('matches patterns with parameters and wildcards', () => {
    const r = router(
      { name: 'user', matches: [{ path: { pattern: '/users/:id' } }] },
      { name: 'files', matches: [{ path: { pattern: '/files/*rest' } }] },
    );
    expect(find(r, '/users/42')).toBe('user');
    expect(find(r, '/users/42/')).toBe('user');
    expect(find(r, '/users/42/posts')).toBeUndefined();
    expect(find(r, '/files/a/b/c.txt')).toBe('files');
    expect(find(r, '/files')).toBeUndefined();
  });

  it('matches non-ASCII config paths against percent-encoded request paths', () => {
    const r = router(
      { name: 'cafe', matches: [{ path: { exact: '/café' } }] },
      { name: 'menu', matches: [{ path: { pattern: '/menü/:item' } }] },
    );
    expect(find(r, '/café')).toBe('cafe');
    expect(find(r, '/caf%C3%A9')).toBe('cafe');
    expect(find(r, '/menü/tea')).toBe('menu');
  });

  it('returns pattern parameters', () => {
    const r = router({ name: 'user', matches: [{ path: { pattern: '/users/:id/posts/:post' } }] });
    const url = new URL('https://example.com/users/7/posts/9');
    expect(
      r.find({ host: url.hostname, path: url.pathname, method: 'GET', headers: new Headers(), url })?.params,
    ).toEqual({ id: '7', post: '9' });
  });
});

describe('precedence (Gateway API order)', () => {
  it('exact beats prefix, even a longer prefix declared first', () => {
    const r = router(
      { name: 'prefix', matches: [{ path: { prefix: '/a/b' } }] },
      { name: 'exact', matches: [{ path: { exact: '/a/b' } }] },
    );
    expect(find(r, '/a/b')).toBe('exact');
    expect(find(r, '/a/b/c')).toBe('prefix');
  });

  it('the longest prefix wins regardless of declaration order', () => {
    const r = router(
      { name: 'root', matches: [{ path: { prefix: '/' } }] },
      { name: 'a', matches: [{ path: { prefix: '/a' } }] },
      { name: 'ab', matches: [{ path: { prefix: '/a/b' } }] },
    );
    expect(find(r, '/a/b/c')).toBe('ab');
    expect(find(r, '/a/x')).toBe('a');
    expect(find(r, '/z')).toBe('root');
  });

  it('a pattern beats a prefix with as many literal segments; more literal characters first', () => {
    const r = router(
      { name: 'prefix', matches: [{ path: { prefix: '/users' } }] },
      { name: 'any-id', matches: [{ path: { pattern: '/users/:id' } }] },
      { name: 'me', matches: [{ path: { pattern: '/users/me' } }] },
      { name: 'exact', matches: [{ path: { exact: '/users/root' } }] },
    );
    expect(find(r, '/users/root')).toBe('exact');
    expect(find(r, '/users/me')).toBe('me');
    expect(find(r, '/users/7')).toBe('any-id');
    expect(find(r, '/users/7/x')).toBe('prefix');
  });

  it('a catch-all pattern does not shadow a longer literal prefix', () => {
    const r = router(
      { name: 'tenant-catch-all', matches: [{ path: { pattern: '/:tenant/*rest' } }] },
      { name: 'orders', matches: [{ path: { prefix: '/api/v1/orders' } }] },
      { name: 'versioned', matches: [{ path: { pattern: '/api/:version/orders/:id' } }] },
    );
    expect(find(r, '/api/v1/orders/42')).toBe('orders');
    expect(find(r, '/api/v2/orders/42')).toBe('versioned');
    expect(find(r, '/acme/anything')).toBe('tenant-catch-all');
  });

  it('on the same path, a method condition beats none', () => {
    const r = router(
      { name: 'any', matches: [{ path: { prefix: '/a' } }] },
      { name: 'post', matches: [{ path: { prefix: '/a' }, method: 'POST' }] },
    );
    expect(find(r, '/a', { method: 'POST' })).toBe('post');
    expect(find(r, '/a', { method: 'GET' })).toBe('any');
  });

  it('a list of methods matches any of them', () => {
    const r = router({ name: 'read', matches: [{ path: { prefix: '/a' }, method: ['GET', 'HEAD'] }] });
    expect(find(r, '/a', { method: 'HEAD' })).toBe('read');
    expect(find(r, '/a', { method: 'PUT' })).toBeUndefined();
  });

  it('more header conditions beat fewer, then more query conditions', () => {
    const r = router(
      { name: 'q1', matches: [{ path: { prefix: '/' }, query: { a: '1' } }] },
      { name: 'h1', matches: [{ path: { prefix: '/' }, headers: { 'x-a': '1' } }] },
      { name: 'h2', matches: [{ path: { prefix: '/' }, headers: { 'x-a': '1', 'x-b': '1' } }] },
      { name: 'q2', matches: [{ path: { prefix: '/' }, query: { a: '1', b: '1' } }] },
    );
    expect(find(r, '/?a=1&b=1', { headers: { 'x-a': '1', 'x-b': '1' } })).toBe('h2');
    expect(find(r, '/?a=1&b=1', { headers: { 'x-a': '1' } })).toBe('h1');
    expect(find(r, '/?a=1&b=1')).toBe('q2');
    expect(find(r, '/?a=1')).toBe('q1');
    expect(find(r, '/')).toBeUndefined();
  });

  it('the path outranks conditions: a longer prefix without conditions beats a shorter one with them', () => {
    const r = router(
      { name: 'short', matches: [{ path: { prefix: '/a' }, method: 'GET', headers: { 'x-a': '1' } }] },
      { name: 'long', matches: [{ path: { prefix: '/a/b' } }] },
    );
    expect(find(r, '/a/b', { headers: { 'x-a': '1' } })).toBe('long');
  });

  it('falls back to declaration order on a full tie', () => {
    const r = router(
      { name: 'first', matches: [{ path: { prefix: '/a' } }] },
      { name: 'second', matches: [{ path: { prefix: '/a' } }] },
    );
    expect(find(r, '/a')).toBe('first');
  });

  it('a longer prefix whose conditions fail falls back to a shorter one', () => {
    const r = router(
      { name: 'root', matches: [{ path: { prefix: '/' } }] },
      { name: 'a-post', matches: [{ path: { prefix: '/a' }, method: 'POST' }] },
    );
    expect(find(r, '/a/x', { method: 'GET' })).toBe('root');
  });
});

describe('header and query conditions', () => {
  it('header names are case-insensitive, values exact and case-sensitive', () => {
    const r = router({ name: 'h', matches: [{ headers: { 'X-Canary': 'true' } }] });
    expect(find(r, '/', { headers: { 'x-canary': 'true' } })).toBe('h');
    expect(find(r, '/', { headers: { 'x-canary': 'TRUE' } })).toBeUndefined();
    expect(find(r, '/')).toBeUndefined();
  });

  it('regular expressions must match the whole value', () => {
    const r = router({ name: 'curl', matches: [{ headers: { 'user-agent': { regex: 'curl/[0-9.]+' } } }] });
    expect(find(r, '/', { headers: { 'user-agent': 'curl/8.5.0' } })).toBe('curl');
    expect(find(r, '/', { headers: { 'user-agent': 'not curl/8.5.0' } })).toBeUndefined();
    expect(find(r, '/')).toBeUndefined();
  });

  it('query conditions use the first value of a parameter', () => {
    const r = router({ name: 'q', matches: [{ query: { v: '2' } }] });
    expect(find(r, '/?v=2')).toBe('q');
    expect(find(r, '/?v=1&v=2')).toBeUndefined();
  });

  it('a route matches if any one of its matches does', () => {
    const r = router({
      name: 'either',
      matches: [{ path: { exact: '/a' } }, { path: { prefix: '/b' }, method: 'POST' }],
    });
    expect(find(r, '/a')).toBe('either');
    expect(find(r, '/b/1', { method: 'POST' })).toBe('either');
    expect(find(r, '/b/1')).toBeUndefined();
  });
});

describe('hostnames', () => {
  const r = router(
    { name: 'any', matches: [{ path: { prefix: '/' } }] },
    { name: 'wild', hostnames: ['*.example.com'] },
    { name: 'deeper-wild', hostnames: ['*.eu.example.com'] },
    { name: 'exact', hostnames: ['api.example.com'], matches: [{ path: { prefix: '/v1' } }] },
  );

  it('exact host beats wildcard beats no hostname', () => {
    expect(find(r, 'https://api.example.com/v1/x')).toBe('exact');
    expect(find(r, 'https://www.example.com/')).toBe('wild');
    expect(find(r, 'https://other.org/')).toBe('any');
  });

  it('the longest wildcard wins, and wildcards span several labels but not the bare domain', () => {
    expect(find(r, 'https://a.eu.example.com/')).toBe('deeper-wild');
    expect(find(r, 'https://a.b.example.com/')).toBe('wild');
    expect(find(r, 'https://example.com/')).toBe('any');
  });

  it('when the most specific host has no matching path, less specific hosts are tried', () => {
    expect(find(r, 'https://api.example.com/other')).toBe('wild');
  });

  it('ignores the port and a trailing dot', () => {
    expect(find(r, 'https://api.example.com:8443/v1')).toBe('exact');
    expect(find(r, 'https://api.example.com./v1')).toBe('exact');
  });
});

describe('scale', () => {
  it('finds the right route among 10,000', () => {
    const entries: E[] = [];
    for (let i = 0; i < 10_000; i++) {
      const kind = i % 3;
      entries.push({
        name: `r${i}`,
        matches: [
          {
            path:
              kind === 0 ? { exact: `/svc${i}/x` } : kind === 1 ? { prefix: `/svc${i}` } : { pattern: `/svc${i}/:id` },
          },
        ],
      });
    }
    const r = router(...entries);
    expect(find(r, '/svc0/x')).toBe('r0');
    expect(find(r, '/svc9997/deep/path')).toBe('r9997');
    expect(find(r, '/svc9998/42')).toBe('r9998');
    expect(find(r, '/svc10000/x')).toBeUndefined();
  });
});
