import { describe, expect, it } from 'vitest';
import { validateSources } from '../../../src/config/validate.ts';
import { compilePlan, rewritePath, type Plan } from '../../../src/plan/compile.ts';
import { pickEndpoint } from '../../../src/traffic/endpoints.ts';

function mesh(yaml: string): Plan {
  const r = validateSources([{ name: 't.yaml', text: yaml }]);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return compilePlan({ version: 'test', config: r.config });
}

/** Deterministic "random" that walks evenly through [0, 1). */
function sweep(n: number): () => number {
  let i = 0;
  return () => (i++ % n) / n + 1 / (2 * n);
}

function pick(m: Plan, service: string, version?: string) {
  const svc = m.services.get(service);
  return svc && pickEndpoint(svc.endpoints, version);
}

const SVC = `
services:
  b:
    backends:
      - { binding: B1, version: v1, weight: 1 }
      - { binding: B2, version: v2, weight: 0 }
      - { url: "http://b.default.svc.cluster.local:8080/base/", version: v3, weight: 0 }
`;

describe('compiled services', () => {
  it('uses service weights when no version is pinned, and reaches a weight-0 version when pinned', () => {
    const m = mesh(`${SVC}routes: []\n`);
    for (let i = 0; i < 50; i++) expect(pick(m, 'b')?.version).toBe('v1');
    expect(pick(m, 'b', 'v2')).toMatchObject({ kind: 'binding', binding: 'B2', key: 'b@v2/B2' });
    expect(pick(m, 'b', 'v3')).toMatchObject({ kind: 'url', key: 'b@v3/b.default.svc.cluster.local:8080' });
    expect(pick(m, 'b', 'v9')).toBeUndefined();
    expect(pick(m, 'nope')).toBeUndefined();
  });

  it('route backendRefs split across versions by their own weights', () => {
    const m = mesh(`${SVC}routes:
  - name: split
    backendRefs:
      - { service: b, version: v1, weight: 1 }
      - { service: b, version: v2, weight: 1 }
`);
    const url = new URL('https://x/');
    const hit = m.router.find({ host: 'x', path: '/', method: 'GET', headers: new Headers(), url })!;
    const random = sweep(2);
    expect([hit.route.targets.pick(random), hit.route.targets.pick(random)]).toEqual([
      { service: 'b', version: 'v1' },
      { service: 'b', version: 'v2' },
    ]);
  });
});

describe('path rewrite', () => {
  function rewrite(prefix: string, rw: { pathPrefix: string } | { path: string }, path: string): string {
    const m = mesh(`${SVC}routes:
  - name: r
    service: b
    matches: [{ path: { prefix: "${prefix}" } }]
    rewrite: ${JSON.stringify(rw)}
`);
    const url = new URL(`https://x${path}`);
    return rewritePath(
      m.router.find({ host: 'x', path: url.pathname, method: 'GET', headers: new Headers(), url })!,
      url.pathname,
    );
  }

  it.each([
    ['/api', '/v2', '/api/users', '/v2/users'],
    ['/api', '/v2', '/api', '/v2'],
    ['/api', '/v2', '/api/', '/v2/'],
    ['/api', '/', '/api/users', '/users'],
    ['/api', '/', '/api', '/'],
    ['/api/', '/v2/', '/api/users', '/v2/users'],
    ['/', '/base', '/x/y', '/base/x/y'],
  ])('prefix %s -> %s turns %s into %s', (prefix, to, path, expected) => {
    expect(rewrite(prefix, { pathPrefix: to }, path)).toBe(expected);
  });

  it('a full-path rewrite replaces the whole path', () => {
    expect(rewrite('/old', { path: '/new/place' }, '/old/anything')).toBe('/new/place');
  });
});
