import { describe, expect, it } from 'vitest';
import { validateSources } from '../../src/config/validate.ts';
import { compileMesh, pickBackend, rewritePath, type CompiledMesh } from '../../src/mesh/compile.ts';
import { WeightedPicker } from '../../src/router/weighted.ts';

function mesh(yaml: string): CompiledMesh {
  const r = validateSources([{ name: 't.yaml', text: yaml }]);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return compileMesh({ version: 'test', config: r.config });
}

/** Deterministic "random" that walks evenly through [0, 1). */
function sweep(n: number): () => number {
  let i = 0;
  return () => (i++ % n) / n + 1 / (2 * n);
}

describe('weighted picker', () => {
  it('splits exactly by relative weight over a full sweep', () => {
    const p = new WeightedPicker([
      { item: 'a', weight: 90 },
      { item: 'b', weight: 10 },
    ]);
    const random = sweep(1000);
    const counts = { a: 0, b: 0 };
    for (let i = 0; i < 1000; i++) counts[p.pick(random) as 'a' | 'b']++;
    expect(counts).toEqual({ a: 900, b: 100 });
  });

  it('never picks weight 0, and picks nothing when all weights are 0', () => {
    const p = new WeightedPicker([
      { item: 'a', weight: 0 },
      { item: 'b', weight: 5 },
    ]);
    for (let i = 0; i < 100; i++) expect(p.pick()).toBe('b');
    expect(new WeightedPicker([{ item: 'a', weight: 0 }]).pick()).toBeUndefined();
    expect(new WeightedPicker([]).pick()).toBeUndefined();
  });

  it('weights are relative: 3:1 behaves as 75:25', () => {
    const p = new WeightedPicker([
      { item: 'a', weight: 3 },
      { item: 'b', weight: 1 },
    ]);
    const random = sweep(400);
    let a = 0;
    for (let i = 0; i < 400; i++) if (p.pick(random) === 'a') a++;
    expect(a).toBe(300);
  });

  it('with Math.random, 10,000 picks land within 2% of 90/10', () => {
    const p = new WeightedPicker([
      { item: 'a', weight: 90 },
      { item: 'b', weight: 10 },
    ]);
    let b = 0;
    for (let i = 0; i < 10_000; i++) if (p.pick() === 'b') b++;
    expect(b / 10_000).toBeGreaterThan(0.08);
    expect(b / 10_000).toBeLessThan(0.12);
  });
});

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
    for (let i = 0; i < 50; i++) expect(pickBackend(m, { service: 'b' })?.version).toBe('v1');
    expect(pickBackend(m, { service: 'b', version: 'v2' })).toMatchObject({
      kind: 'binding',
      binding: 'B2',
      label: 'b@v2',
    });
    expect(pickBackend(m, { service: 'b', version: 'v3' })).toMatchObject({ kind: 'url' });
    expect(pickBackend(m, { service: 'b', version: 'v9' })).toBeUndefined();
    expect(pickBackend(m, { service: 'nope' })).toBeUndefined();
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
