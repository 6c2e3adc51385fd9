/**
 * Node side of config loading: reads a routes directory (CLI, build, tests). Files are taken
 * in name order, which is also their declaration order for route precedence.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { makeBundle } from '../../config/bundle.ts';
import type { MeshBundle } from '../../config/schema.ts';
import { validateSources, type ConfigIssue, type ConfigSource, type ValidateOptions } from '../../config/validate.ts';

export function readRoutesDir(dir: string, cwd = process.cwd()): ConfigSource[] {
  let stat;
  try {
    stat = statSync(dir);
  } catch {
    throw new Error(`routes directory not found: ${dir}`);
  }
  const files = stat.isDirectory()
    ? readdirSync(dir)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .map((f) => join(dir, f))
    : [dir];
  return files.map((f) => ({ name: relative(cwd, f) || f, text: readFileSync(f, 'utf8') }));
}

export type BundleResult = { ok: true; bundle: MeshBundle } | { ok: false; errors: ConfigIssue[] };

export async function bundleRoutesDir(dir: string, options: ValidateOptions = {}): Promise<BundleResult> {
  const sources = readRoutesDir(dir);
  const result = validateSources(sources, options);
  if (!result.ok) return result;
  // Sources are named relative to the routes directory: what `apply` sends and `diff` compares.
  const named = sources.map((s) => ({ name: basename(s.name), text: s.text }));
  return { ok: true, bundle: await makeBundle(result.config, named) };
}
