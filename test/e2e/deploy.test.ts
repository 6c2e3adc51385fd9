import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QUIET_WRANGLER_ENV } from '../../src/node/dev/workers.ts';
import { loadProject } from '../../src/node/project/project.ts';

const project = loadProject();

function dryRun(config: string): { code: number | null; out: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-bundle-'));
  const r = spawnSync(
    process.execPath,
    ['node_modules/wrangler/bin/wrangler.js', 'deploy', '--dry-run', '--outdir', dir, '-c', config],
    {
      encoding: 'utf8',
      env: { ...process.env, ...QUIET_WRANGLER_ENV },
    },
  );
  return { code: r.status, out: r.stdout + r.stderr, dir };
}

describe('wrangler deploy --dry-run bundles every worker', () => {
  it.each(project.workers.map((w) => w.config))('%s', (config) => {
    const r = dryRun(config);
    expect(r.code, r.out).toBe(0);
    const bundle = join(r.dir, 'index.js');
    expect(existsSync(bundle)).toBe(true);
    // The routes compiled at build time are inside the bundle: what is in routes/ is what runs.
    const built = JSON.parse(readFileSync(project.builtConfig, 'utf8')) as { version: string };
    expect(readFileSync(bundle, 'utf8')).toContain(built.version);
  });
});
