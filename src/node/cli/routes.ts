/** The routes directory a command works on, and reading it (validate, apply, diff). */
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { formatIssue } from '../../config/validate.ts';
import { bundleRoutesDir, type BundleResult } from '../config/load-dir.ts';
import { findProjectRoot, loadProject } from '../project/project.ts';
import { CommandError, UsageError, type OptionSpec } from './command.ts';

export const FILENAME_OPTION = {
  filename: {
    type: 'string',
    short: 'f',
    value: 'dir',
    description: "the routes directory (default: the project's, from meshwork.yaml; else ./routes)",
  },
} as const satisfies Record<string, OptionSpec>;

/**
 * `-f <dir>`, or the positional dir, or the project's routes directory (meshwork.yaml), or
 * ./routes. Given both -f and a different positional, it is a usage error.
 */
export function routesDir(filename: string | undefined, positional: string | undefined): string {
  if (filename !== undefined && positional !== undefined && filename !== positional)
    throw new UsageError(`give the routes directory once (-f ${filename} or ${positional})`);
  const given = filename ?? positional;
  if (given === '') throw new UsageError('-f needs a directory');
  if (given !== undefined) return given;
  if (findProjectRoot()) return relative(process.cwd(), loadProject().routesDir) || '.';
  return 'routes';
}

/** The routes directory validated and bundled; a missing directory is a CommandError. */
export async function bundleDir(dir: string): Promise<BundleResult> {
  if (!existsSync(dir)) throw new CommandError(`routes directory not found: ${dir}`);
  return bundleRoutesDir(dir);
}

export function issueLines(result: Extract<BundleResult, { ok: false }>): string[] {
  return result.errors.map(formatIssue);
}
