/**
 * CLI commands that talk to a gateway's control-plane API: apply, diff, rollback, status.
 * --url defaults to the local dev mesh (MESHWORK_URL overrides); the admin token comes from
 * --token, then MESH_ADMIN_TOKEN, then (for a local URL) the dev keys `npm run dev` created.
 */
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { ACTOR_HEADER } from '../../core/header-names.ts';
import { bundleRoutesDir } from '../config/load-dir.ts';
import { formatIssue, type ConfigIssue } from '../../config/validate.ts';
import { startedMesh } from '../dev/mesh-file.ts';
import { devKeysPath, type DevKeys } from './keys.ts';

export class UsageError extends Error {}

export const DEFAULT_URL = 'http://127.0.0.1:8787';

export const CONNECTION = {
  url: { type: 'string' },
  token: { type: 'string' },
} as const;

export interface Connection {
  url: string;
  token: string;
}

/** The gateway and the admin credential, for every command that calls the admin API. */
export function connection(values: { url?: string | undefined; token?: string | undefined }, root: string): Connection {
  const url = (values.url ?? process.env.MESHWORK_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--url must be an http(s) URL, got "${url}"`);
  const local = /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(url);
  // The admin token never travels in the clear, except to this machine.
  if (!local && !url.startsWith('https://'))
    throw new UsageError(`--url must use https:// for a gateway that is not on this machine, got "${url}"`);
  let token = values.token ?? process.env.MESH_ADMIN_TOKEN;
  // The local dev token goes only to the mesh this checkout's `npm run dev` started, not to
  // whatever else may listen on that port.
  if (!token && local && existsSync(devKeysPath(root)) && startedMesh(root, url)) {
    token = (JSON.parse(readFileSync(devKeysPath(root), 'utf8')) as DevKeys).adminToken;
  }
  if (!token) {
    const hint = local
      ? ` (the local dev token is used only for a mesh \`npm run dev\` started here; none runs at ${url})`
      : '';
    throw new UsageError(`no admin token: pass --token or set MESH_ADMIN_TOKEN (the gateway's wrangler secret)${hint}`);
  }
  return { url, token };
}

async function call(
  conn: Connection,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await fetch(`${conn.url}/_mesh/admin${path}`, {
      method,
      headers: {
        authorization: `Bearer ${conn.token}`,
        'content-type': 'application/json',
        [ACTOR_HEADER]: safeUser(),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      // Never follow: a redirect could carry the token elsewhere or turn a POST into a GET.
      redirect: 'manual',
      signal: AbortSignal.timeout(15_000),
    });
  } catch (e) {
    throw new Error(
      `cannot reach ${conn.url} (${(e as Error).cause ? String((e as Error & { cause: unknown }).cause) : (e as Error).message}); is the mesh running?`,
    );
  }
  if (res.status >= 300 && res.status < 400) {
    throw new Error(
      `${conn.url} redirected to ${res.headers.get('location') ?? '(nowhere)'}; pass the gateway's final URL with --url`,
    );
  }
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`${conn.url} answered ${res.status} with something that is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, json };
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return '';
  }
}

/**
 * Text from a gateway made safe for a terminal: control characters (ANSI escapes, carriage
 * returns) and bidirectional overrides are shown as escapes, never interpreted.
 */
export function printable(text: string): string {
  // Matching control characters is the point here.
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

function failure(status: number, json: Record<string, unknown>): number {
  const error = json.error as { code?: string; message?: string } | undefined;
  const code = error?.code ? ` ${printable(String(error.code))}` : '';
  console.error(`error ${status}${code}: ${printable(String(error?.message ?? JSON.stringify(json)))}`);
  for (const issue of (json.errors as ConfigIssue[] | undefined) ?? []) console.error(printable(formatIssue(issue)));
  return 1;
}

async function localFiles(dir: string) {
  const result = await bundleRoutesDir(dir);
  if (!result.ok) {
    for (const issue of result.errors) console.error(formatIssue(issue));
    console.error(`\n${result.errors.length} error(s) in ${dir}; nothing was sent`);
    return undefined;
  }
  return result.bundle.sources!;
}

export async function apply(args: string[], root: string): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...CONNECTION, message: { type: 'string', short: 'm' }, force: { type: 'boolean' } },
  });
  if (positionals.length > 1) throw new UsageError('apply takes at most one directory');
  const conn = connection(values, root);
  const dir = positionals[0] ?? 'routes';
  // Checked locally first, then again by the gateway (same validator) with what only it knows.
  const files = await localFiles(dir);
  if (!files) return 1;
  const { status, json } = await call(conn, 'POST', '/config', {
    files,
    ...(values.message ? { message: values.message } : {}),
    ...(values.force ? { force: true } : {}),
  });
  if (status !== 200) return failure(status, json);
  if (typeof json.revision !== 'number' || typeof json.version !== 'string')
    throw new Error(`${conn.url} answered an apply with something unexpected: ${JSON.stringify(json).slice(0, 200)}`);
  if (json.unchanged)
    console.log(`${conn.url}: already running config ${json.version} (revision ${json.revision}); nothing changed`);
  else console.log(`${conn.url}: applied config ${json.version} as revision ${json.revision}`);
  return 0;
}

export async function diff(args: string[], root: string): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: CONNECTION });
  if (positionals.length > 1) throw new UsageError('diff takes at most one directory');
  const conn = connection(values, root);
  const files = await localFiles(positionals[0] ?? 'routes');
  if (!files) return 1;
  const { status, json } = await call(conn, 'POST', '/diff', { files });
  if (status !== 200) return failure(status, json);
  // The admin API's ConfigDiff (src/config/diff.ts).
  const d = json as {
    from: string;
    to: string;
    patch: string;
    summary: {
      routes: Record<string, string[]>;
      services: Record<string, string[]>;
      rateLimits?: Record<string, string[]>;
      sections: string[];
    };
  };
  const { summary } = d;
  const changed =
    d.patch !== '' ||
    summary.sections.length > 0 ||
    [summary.routes, summary.services, summary.rateLimits ?? {}].some((c) =>
      Object.values(c).some((n) => n.length > 0),
    );
  if (d.from === d.to || !changed) {
    // Same files, different version: the config was validated by another meshwork release.
    const note = d.from === d.to ? '' : ` (same routes files; version ${d.to} when applied by this release)`;
    console.log(`no change: ${conn.url} runs config ${d.from}${note}`);
    return 0;
  }
  process.stdout.write(printable(d.patch));
  console.log(`\nconfig ${d.from} -> ${d.to}`);
  for (const kind of ['routes', 'services', 'rateLimits'] as const) {
    for (const change of ['added', 'removed', 'changed']) {
      const names = summary[kind]?.[change] ?? [];
      if (names.length) console.log(`  ${kind} ${change}: ${names.join(', ')}`);
    }
  }
  if (summary.sections.length) console.log(`  sections changed: ${summary.sections.join(', ')}`);
  return 0;
}

export async function rollback(args: string[], root: string): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: CONNECTION });
  if (positionals.length > 1) throw new UsageError('rollback takes at most one revision');
  // A revision number, or a config version (the 12-hex-digit hash status and apply show).
  let target: { revision: number } | { version: string } | Record<string, never> = {};
  const arg = positionals[0];
  if (arg !== undefined) {
    if (/^[0-9a-f]{12}$/.test(arg)) target = { version: arg };
    else if (/^\d+$/.test(arg)) target = { revision: Number(arg) };
    else throw new UsageError(`rollback takes a config revision number or version (see meshwork status), got "${arg}"`);
  }
  const conn = connection(values, root);
  const { status, json } = await call(conn, 'POST', '/rollback', target);
  if (status !== 200) return failure(status, json);
  const back = json as { revision: number; version: string };
  console.log(`${conn.url}: config back to revision ${back.revision} (${back.version})`);
  return 0;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function ago(iso: string | null): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
}

export async function status(args: string[], root: string): Promise<number> {
  const { values } = parseArgs({ args, options: { ...CONNECTION, json: { type: 'boolean' } } });
  const conn = connection(values, root);
  const { status: code, json } = await call(conn, 'GET', '/status');
  if (code !== 200) return failure(code, json);
  if (values.json) {
    console.log(JSON.stringify(json, null, 2));
    return 0;
  }
  // The admin API's status rows (src/control/admin/status.ts).
  type Row = {
    endpoint: string;
    version: string | null;
    target: string;
    weight: number;
    inRotation: boolean;
    registered: boolean;
    status: string;
    health: string;
    lastHeartbeat: string | null;
  };
  const s = json as {
    configVersion: string;
    configRevision: number;
    revision: number;
    services: Array<{ name: string; endpoints: Row[] }>;
  };
  const services = s.services;
  const bundled = s.configRevision === 0 ? ', the bundled routes/' : '';
  console.log(
    `${conn.url}: config ${s.configVersion} (revision ${s.configRevision}${bundled}), registry revision ${s.revision}\n`,
  );
  const rows = [['SERVICE', 'VERSION', 'ENDPOINT', 'TARGET', 'WEIGHT', 'ROTATION', 'STATUS', 'HEALTH', 'HEARTBEAT']];
  for (const s of services) {
    for (const b of s.endpoints) {
      rows.push([
        s.name,
        b.version ?? '-',
        b.endpoint.slice(b.endpoint.indexOf('/') + 1),
        b.target,
        String(b.weight),
        b.inRotation ? 'in' : 'OUT',
        b.status,
        b.health,
        ago(b.lastHeartbeat),
      ]);
    }
  }
  // Every cell is the gateway's data (a service may name its own version): printed, never run.
  console.log(table(rows.map((r) => r.map(printable))));
  return 0;
}
