/**
 * A worker's .dev.vars holds the user's own local secrets beside the mesh's dev keys. meshwork
 * owns only the variables it writes (MESH_*, MESHWORK_DEV): it replaces their lines in place and
 * keeps every other line (the user's variables, comments, blank lines) as it was.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const HEADER = '# meshwork dev keys (written by `meshwork dev`; local only, never commit this file):';

/** The text of .dev.vars with `vars` set and everything else kept. */
export function mergeDevVars(existing: string, vars: Readonly<Record<string, string>>): string {
  const lines = existing === '' ? [] : existing.replace(/\n$/, '').split('\n');
  const pending = new Map(Object.entries(vars));
  const out: string[] = [];
  for (const line of lines) {
    const name = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=/.exec(line)?.[1];
    if (name !== undefined && pending.has(name)) {
      out.push(assignment(name, pending.get(name)!));
      pending.delete(name);
    } else if (name !== undefined && name in vars) {
      // A second line for a variable already set above: dotenv would take the last; drop it.
    } else out.push(line);
  }
  if (pending.size > 0) {
    if (!out.includes(HEADER)) {
      if (out.length > 0 && out[out.length - 1] !== '') out.push('');
      out.push(HEADER);
    }
    for (const [name, value] of pending) out.push(assignment(name, value));
  }
  return `${out.join('\n')}\n`;
}

function assignment(name: string, value: string): string {
  // Single quotes: dotenv takes the value literally (JSON keys hold double quotes).
  if (value.includes("'") || value.includes('\n')) throw new Error(`${name}: a dev var cannot hold ' or a newline`);
  return `${name}='${value}'`;
}

/** Sets `vars` in the .dev.vars file at `path`, keeping the user's lines; writes only on change. */
export function updateDevVars(path: string, vars: Readonly<Record<string, string>>): void {
  const existing = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const next = mergeDevVars(existing, vars);
  if (next === existing) return;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, next, { mode: 0o600 });
}
