/**
 * Reading a routes directory: errors name each file the way the user named the directory, so
 * the path they see is one they can open from where they ran the command.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { formatIssue } from '../../../src/config/validate.ts';
import { bundleRoutesDir, readRoutesDir } from '../../../src/node/config/load-dir.ts';

const BAD = 'routes:\n  - name: r1\n    service: svc\n    pth: /x\n';

let root: string;
beforeEach(() => {
  // A project with its routes in routes/, and the user somewhere inside it.
  root = mkdtempSync(join(tmpdir(), 'meshwork-load-dir-'));
  mkdirSync(join(root, 'routes'));
  mkdirSync(join(root, 'sub'));
  writeFileSync(join(root, 'routes', 'b.yaml'), BAD);
  writeFileSync(join(root, 'routes', 'a.yml'), 'services:\n  svc: { backends: [{ binding: SVC }] }\n');
});

describe('readRoutesDir', () => {
  it('keeps an absolute directory absolute in the file names', () => {
    const dir = join(root, 'routes');
    expect(readRoutesDir(dir, join(root, 'sub')).map((s) => s.name)).toEqual([join(dir, 'a.yml'), join(dir, 'b.yaml')]);
    // Even when the working directory is the routes directory itself, or above it.
    expect(readRoutesDir(dir, dir).map((s) => s.name)).toEqual([join(dir, 'a.yml'), join(dir, 'b.yaml')]);
    expect(readRoutesDir(dir, root).map((s) => s.name)).toEqual([join(dir, 'a.yml'), join(dir, 'b.yaml')]);
  });

  it('keeps a relative directory relative to the working directory, reading it from there', () => {
    expect(readRoutesDir('routes', root).map((s) => s.name)).toEqual(['routes/a.yml', 'routes/b.yaml']);
    expect(readRoutesDir('./routes/', root).map((s) => s.name)).toEqual(['routes/a.yml', 'routes/b.yaml']);
    expect(readRoutesDir('../routes', join(root, 'sub')).map((s) => s.name)).toEqual([
      '../routes/a.yml',
      '../routes/b.yaml',
    ]);
    expect(readRoutesDir('routes', root)[1]!.text).toBe(BAD);
  });

  it('names a single file as given', () => {
    const file = join(root, 'routes', 'b.yaml');
    expect(readRoutesDir(file, root).map((s) => s.name)).toEqual([file]);
    expect(readRoutesDir('routes/b.yaml', root).map((s) => s.name)).toEqual(['routes/b.yaml']);
  });

  it('names the directory as given when it does not exist', () => {
    expect(() => readRoutesDir('nowhere', root)).toThrow('routes directory not found: nowhere');
    expect(() => readRoutesDir(join(root, 'nowhere'), root)).toThrow(
      `routes directory not found: ${join(root, 'nowhere')}`,
    );
  });
});

describe('bundleRoutesDir errors', () => {
  it('point at the absolute path for an absolute directory, and at the relative one for a relative directory', async () => {
    const dir = join(root, 'routes');
    const absolute = await bundleRoutesDir(dir);
    expect(absolute.ok).toBe(false);
    if (!absolute.ok) expect(formatIssue(absolute.errors[0]!)).toMatch(new RegExp(`^${dir}/b\\.yaml:4:5: `));

    // Relative to the process's working directory, as the CLI is run.
    const relativeDir = relative(process.cwd(), dir);
    const rel = await bundleRoutesDir(relativeDir);
    expect(rel.ok).toBe(false);
    if (!rel.ok) expect(rel.errors[0]!.file).toBe(join(relativeDir, 'b.yaml'));
  });
});
