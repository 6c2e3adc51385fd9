import { describe, expect, it } from 'vitest';
import { makeBundle } from '../../../src/config/bundle.ts';
import { diffBundles } from '../../../src/config/diff.ts';
import { SECTIONS } from '../../../src/config/schema.ts';
import { validateSources } from '../../../src/config/validate.ts';

async function bundle(text: string) {
  const r = validateSources([{ name: 'mesh.yaml', text }]);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return makeBundle(r.config, [{ name: 'mesh.yaml', text }]);
}

const BASE = `services:
  svc: { backends: [{ binding: SVC }] }
rateLimits:
  per-ip: { limit: 10, period: 1s }
routes:
  - name: r1
    service: svc
`;

describe('config diff', () => {
  it('names what changed, by route, service, policy and section, with a unified patch', async () => {
    const from = await bundle(BASE);
    const to = await bundle(
      `${BASE.replace('limit: 10', 'limit: 20')}  - name: r2\n    service: svc\nregistry: { refreshInterval: 1s }\nidentity: { tokenTtl: 120s }\n`,
    );
    const d = diffBundles(from, to);
    expect(d.summary.routes).toEqual({ added: ['r2'], removed: [], changed: [] });
    expect(d.summary.services).toEqual({ added: [], removed: [], changed: [] });
    expect(d.summary.rateLimits).toEqual({ added: [], removed: [], changed: ['per-ip'] });
    expect(d.summary.sections.sort()).toEqual(['identity', 'registry']);
    expect(d.patch).toContain('+  - name: r2');
    expect(diffBundles(from, from).summary.sections).toEqual([]);
  });

  it('compares every section the schema has', async () => {
    // A section added to the schema is in SECTIONS (enforced by its type), so diff sees it.
    const from = await bundle(BASE);
    const to = await bundle(`${BASE}admin: { scope: ops }\nrateLimitStore: { binding: OTHER }\n`);
    expect(diffBundles(from, to).summary.sections.sort()).toEqual(['admin', 'rateLimitStore']);
    expect(Object.keys(SECTIONS).sort()).toEqual(
      [
        'admin',
        'auth',
        'identity',
        'network',
        'observability',
        'rateLimitStore',
        'rateLimits',
        'registry',
        'routes',
        'services',
      ].sort(),
    );
  });
});
