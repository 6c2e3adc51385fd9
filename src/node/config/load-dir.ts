/**
 * Node side of config loading: reads a routes directory (CLI, build, tests). Files are taken
 * in name order, which is also their declaration order for route precedence.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { makeBundle } from '../../config/bundle.ts';
import type { MeshBundle } from '../../config/schema.ts';
import { validateSources, type ConfigIssue, type ConfigSource, type ValidateOptions } from '../../config/validate.ts';

/**
 * The routes files in `dir` (or `dir` itself, if it is a file), each named as the user gave the
 * directory: a relative `dir` gives names relative to `cwd` ("routes/mesh.yaml"), an absolute one
 * absolute names ("/srv/mesh/routes/mesh.yaml"), so an error points at a path the user can open
 * from where they typed the command. A relative `dir` is read relative to `cwd`.
 */
export function readRoutesDir(dir: string, cwd = process.cwd()): ConfigSource[] {
  const onDisk = (p: string) => resolve(cwd, p);
  let stat;
  try {
    stat = statSync(onDisk(dir));
  } catch {
    throw new Error(`routes directory not found: ${dir}`);
  }
  const files = stat.isDirectory()
    ? readdirSync(onDisk(dir))
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .map((f) => join(dir, f))
    : [dir];
  return files.map((f) => ({ name: f, text: readFileSync(onDisk(f), 'utf8') }));
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
