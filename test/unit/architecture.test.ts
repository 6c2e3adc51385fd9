/**
 * The layering of src/ (.dependency-cruiser.cjs, docs/architecture.md): checked on the real tree,
 * and shown to catch what it must on small trees that break it.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const DEPCRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

function cruise(cwd: string): { code: number | null; out: string } {
  const r = spawnSync(
    process.execPath,
    [DEPCRUISE, 'src', '--config', join(ROOT, '.dependency-cruiser.cjs'), '--output-type', 'err'],
    {
      cwd,
      encoding: 'utf8',
    },
  );
  return { code: r.status, out: r.stdout + r.stderr };
}

/** A throwaway tree of TypeScript files (path -> source) with the project's tsconfig. */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-arch-'));
  copyFileSync(join(ROOT, 'tsconfig.json'), join(dir, 'tsconfig.json'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('layers of src/', () => {
  it('the tree as it is has no violations', () => {
    const r = cruise(ROOT);
    expect(r.out).toContain('no dependency violations');
    expect(r.code).toBe(0);
  }, 60_000);

  it('core may import nothing else of ours', () => {
    const r = cruise(
      tree({
        'src/core/a.ts': "import { b } from '../gateway/b.ts';\nexport const a = b;\n",
        'src/gateway/b.ts': 'export const b = 1;\n',
      }),
    );
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('layer-core');
  }, 60_000);

  it('an import cycle between folders fails, as does one between modules', () => {
    const folders = cruise(
      tree({
        'src/plan/p.ts': "import { g } from '../gateway/g.ts';\nexport const p = () => g;\n",
        'src/gateway/g.ts': "import { p } from '../plan/p.ts';\nexport const g = () => p;\n",
      }),
    );
    expect(folders.code).not.toBe(0);
    expect(folders.out).toContain('layer-plan');
    const modules = cruise(
      tree({
        'src/auth/x.ts': "import { y } from './y.ts';\nexport const x = () => y;\n",
        'src/auth/y.ts': "import { x } from './x.ts';\nexport const y = () => x;\n",
      }),
    );
    expect(modules.code).not.toBe(0);
    expect(modules.out).toContain('no-circular');
  }, 60_000);

  it('src/ never imports scripts/, and worker code never Node built-ins', () => {
    const r = cruise(
      tree({
        'src/config/c.ts':
          "import { s } from '../../scripts/s.ts';\nimport { readFileSync } from 'node:fs';\nexport const c = [s, readFileSync];\n",
        'scripts/s.ts': 'export const s = 1;\n',
      }),
    );
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('src-stays-in-src');
    expect(r.out).toContain('node-only-in-node');
  }, 60_000);

  it('core uses only its two libraries, and only the Durable Object and entrypoint modules use cloudflare:workers', () => {
    const r = cruise(
      tree({
        'src/core/z.ts': "import { z } from 'zod';\nexport const s = z.string();\n",
        'src/plan/d.ts': "import { DurableObject } from 'cloudflare:workers';\nexport const D = DurableObject;\n",
        'node_modules/zod/package.json': '{ "name": "zod", "main": "index.js" }',
        'node_modules/zod/index.js': 'export const z = {};\n',
      }),
    );
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('core-libraries');
    expect(r.out).toContain('runtime-modules');
  }, 60_000);
});

describe('one outbound call path', () => {
  it("the gateway's forward stage and mesh.fetch both hand the call to callService, building no request themselves", () => {
    for (const file of ['src/gateway/stages/forward.ts', 'src/wrapper/client.ts']) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      expect(text, file).toMatch(/import \{[^}]*\bcallService\b[^}]*\} from '\.\.\/(\.\.\/)?traffic\/index\.ts'/);
      // The code alone: comments and string literals may mention fetch.
      const code = text
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '')
        .replace(/`(?:\\.|[^`\\])*`|'(?:\\.|[^'\\])*'/g, "''");
      expect(code, file).toMatch(/\bcallService\(/);
      expect(code, file).not.toMatch(/new Request\(|\.fetch\(|fetcherOf|upstreamFor/);
    }
  });
});
