/**
 * Saved contexts, as kubectl's: named gateways (URL and where their admin token comes from) and
 * the current one, in $MESHWORK_CONFIG, else $XDG_CONFIG_HOME/meshwork/config.json, else
 * ~/.config/meshwork/config.json. The file is written with mode 0600 (it may hold a token).
 *
 *   { "currentContext": "prod",
 *     "contexts": { "prod": { "url": "https://mesh.example.com", "tokenEnv": "PROD_MESH_TOKEN" } } }
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { CommandError } from './command.ts';

export interface SavedContext {
  url: string;
  /** The environment variable holding its admin token (read at each use; nothing stored). */
  tokenEnv?: string;
  /** The admin token itself, stored in the file. */
  token?: string;
}

export interface CliConfig {
  currentContext?: string;
  contexts: Record<string, SavedContext>;
}

export function configPath(): string {
  const explicit = process.env.MESHWORK_CONFIG;
  if (explicit) return resolve(explicit);
  const xdg = process.env.XDG_CONFIG_HOME;
  // The XDG spec: a relative XDG_CONFIG_HOME is ignored.
  const base = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.config');
  return join(base, 'meshwork', 'config.json');
}

/** The saved config (empty when there is no file yet). A broken file is an error that names it. */
export function readConfig(path = configPath()): CliConfig {
  if (!existsSync(path)) return { contexts: {} };
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CommandError(`${path} is not valid JSON (${(e as Error).message}); fix it or delete it`);
  }
  const c = json as Partial<CliConfig> | null;
  const contexts = c?.contexts;
  if (
    !c ||
    typeof c !== 'object' ||
    (c.currentContext !== undefined && typeof c.currentContext !== 'string') ||
    !contexts ||
    typeof contexts !== 'object' ||
    Object.values(contexts).some((x) => !x || typeof x !== 'object' || typeof x.url !== 'string')
  )
    throw new CommandError(
      `${path} is not a meshwork config (expected { currentContext?, contexts: { name: { url } } })`,
    );
  return { ...(c.currentContext ? { currentContext: c.currentContext } : {}), contexts };
}

/** Written whole (a temporary file renamed over it), mode 0600, in a directory only the user can list. */
export function writeConfig(config: CliConfig, path = configPath()): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600, flag: 'w' });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The current context, if one is set. One that names a deleted context is an error. */
export function currentContext(): { name: string; context: SavedContext; path: string } | undefined {
  const path = configPath();
  const config = readConfig(path);
  const name = config.currentContext;
  if (!name) return undefined;
  const context = config.contexts[name];
  if (!context)
    throw new CommandError(
      `the current context "${name}" (${path}) is not defined; pick another with \`meshwork context use <name>\``,
    );
  if (context.token && isLooseMode(path))
    console.error(`meshwork: warning: ${path} holds a token but others can read it; run chmod 600 ${path}`);
  return { name, context, path };
}

function isLooseMode(path: string): boolean {
  try {
    return process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0;
  } catch {
    return false;
  }
}
