/**
 * Where the CLI finds the gateway, which admin token it sends, and the one HTTP client every
 * command that calls a gateway uses (its failures worded for the user: what is wrong and what to
 * do next).
 *
 * The gateway: --url, else MESHWORK_URL, else the current saved context (saved-contexts.ts),
 * else the dev mesh `meshwork dev` runs for this project (recorded in .meshwork/dev-mesh-<port>.json
 * under the project root; if several run, the user picks one with --url), else
 * http://127.0.0.1:8787.
 *
 * The token: --token, else MESH_ADMIN_TOKEN, else the context's (when the URL is the context's),
 * else for a local URL the dev mesh's admin token, and that only to a mesh this project's
 * `meshwork dev` recorded as started by a live process, never to whatever else listens on a port.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { ACTOR_HEADER } from '../../core/header-names.ts';
import { formatIssue, type ConfigIssue } from '../../config/validate.ts';
import { startedMesh, type DevMesh } from '../dev/mesh-file.ts';
import { projectRoot } from '../project/project.ts';
import { CommandError, UsageError, type OptionSpec } from './command.ts';
import { devKeysPath, type DevKeys } from './keys.ts';
import { printable } from './output.ts';
import { currentContext } from './saved-contexts.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8787';

const TIMEOUT_MS = 15_000;

export const GATEWAY_OPTIONS = {
  url: {
    type: 'string',
    value: 'URL',
    description: 'the gateway (default: MESHWORK_URL, the current context, the dev mesh)',
  },
  token: {
    type: 'string',
    value: 'TOKEN',
    description: "the admin token (default: MESH_ADMIN_TOKEN, the context's, the dev mesh's)",
  },
} as const satisfies Record<string, OptionSpec>;

/** The paragraph every gateway command's help ends with. */
export const GATEWAY_HELP = `The gateway is --url, else MESHWORK_URL, else the current context (meshwork context), else
the dev mesh \`npx meshwork dev\` runs for this project, else ${DEFAULT_URL}. The admin
token is --token, else MESH_ADMIN_TOKEN, else the context's, else (for the dev mesh only) the
one \`meshwork dev\` created in .meshwork/.`;

export interface Connection {
  url: string;
  token: string;
  /** Where the URL came from, for messages: "--url", "MESHWORK_URL", 'context "prod"', "the dev mesh", "the default". */
  urlFrom: string;
  /** Where the token came from, for messages. */
  tokenFrom: string;
  /** The project root (where .meshwork/ is). */
  root: string;
  /** The dev mesh record the URL came from, if it came from one. */
  devMesh?: DevMesh;
}

/** A gateway URL checked and without trailing slashes; `local` when it is this machine. */
export function gatewayUrl(raw: string, from: string): { url: string; local: boolean } {
  const url = raw.trim().replace(/\/+$/, '');
  if (url === '') throw new UsageError(`${from} needs a URL`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${from} must be an http(s) URL, got "${raw}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new UsageError(`${from} must be an http(s) URL, got "${raw}"`);
  if (parsed.username || parsed.password) throw new UsageError(`${from} must not hold credentials: use --token`);
  const local = ['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname);
  // The admin token never travels in the clear, except to this machine.
  if (!local && parsed.protocol !== 'https:')
    throw new UsageError(`${from} must use https:// for a gateway that is not on this machine, got "${raw}"`);
  return { url, local };
}

/** The dev meshes `meshwork dev` runs for the project at `root` (live processes only), by port. */
export function runningDevMeshes(root: string): DevMesh[] {
  const dir = join(root, '.meshwork');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const meshes: DevMesh[] = [];
  for (const name of names) {
    const port = /^dev-mesh-(\d+)\.json$/.exec(name)?.[1];
    if (!port) continue;
    const mesh = startedMesh(root, `http://127.0.0.1:${port}`);
    if (mesh) meshes.push(mesh);
  }
  return meshes.sort((a, b) => Number(new URL(a.url).port) - Number(new URL(b.url).port));
}

function portOf(url: string): string {
  const u = new URL(url);
  return u.port || (u.protocol === 'https:' ? '443' : '80');
}

/** The gateway and the admin credential, for every command that calls a gateway. */
export function connection(
  values: { url?: string | undefined; token?: string | undefined },
  root = projectRoot(),
): Connection {
  let raw: string;
  let urlFrom: string;
  let context: ReturnType<typeof currentContext>;
  let devMesh: DevMesh | undefined;
  if (values.url !== undefined) {
    raw = values.url;
    urlFrom = '--url';
  } else if (process.env.MESHWORK_URL) {
    raw = process.env.MESHWORK_URL;
    urlFrom = 'MESHWORK_URL';
  } else if ((context = currentContext())) {
    raw = context.context.url;
    urlFrom = `context "${context.name}"`;
  } else {
    const meshes = runningDevMeshes(root);
    if (meshes.length > 1)
      throw new UsageError(
        `${meshes.length} dev meshes run in ${root} (ports ${meshes.map((m) => portOf(m.url)).join(', ')}): pick one with --url ${meshes[0]!.url.replace(/:\d+$/, ':<port>')}`,
      );
    devMesh = meshes[0];
    raw = devMesh?.url ?? DEFAULT_URL;
    urlFrom = devMesh ? 'the dev mesh' : 'the default';
  }
  const { url, local } = gatewayUrl(raw, urlFrom);

  let token: string | undefined;
  let tokenFrom = '';
  if (values.token !== undefined) [token, tokenFrom] = [values.token, '--token'];
  else if (process.env.MESH_ADMIN_TOKEN) [token, tokenFrom] = [process.env.MESH_ADMIN_TOKEN, 'MESH_ADMIN_TOKEN'];
  else if (context?.context.tokenEnv) {
    const name = context.context.tokenEnv;
    token = process.env[name];
    tokenFrom = `$${name} (context "${context.name}")`;
    if (!token) throw new UsageError(`context "${context.name}" takes its admin token from $${name}, which is not set`);
  } else if (context?.context.token) [token, tokenFrom] = [context.context.token, `context "${context.name}"`];
  else if (local && existsSync(devKeysPath(root)) && startedMesh(root, url)) {
    // The dev token goes only to the mesh this project's `meshwork dev` started at that URL.
    token = (JSON.parse(readFileSync(devKeysPath(root), 'utf8')) as DevKeys).adminToken;
    tokenFrom = `the dev keys in ${devKeysPath(root)}`;
  }
  if (!token) {
    if (urlFrom === 'the default')
      throw new UsageError(
        `no gateway: no dev mesh is running in ${root}, and no --url, MESHWORK_URL or current context names one\nstart one with \`npx meshwork dev\`, or pass --url`,
      );
    if (local)
      throw new UsageError(
        `no admin token for ${url}: pass --token or set MESH_ADMIN_TOKEN\nthe dev mesh's token goes only to a mesh \`meshwork dev\` started in ${root}, and none runs at ${url}`,
      );
    throw new UsageError(
      `no admin token for ${url}: pass --token, set MESH_ADMIN_TOKEN, or save it in a context (meshwork context set <name> --url ${url} --token-env <VAR>)`,
    );
  }
  return { url, token, urlFrom, tokenFrom, root, ...(devMesh ? { devMesh } : {}) };
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return '';
  }
}

/** What to do when the gateway does not answer: is a dev mesh running, and where. */
function unreachableHint(conn: Connection): string {
  if (conn.devMesh)
    return `the dev mesh recorded in .meshwork/dev-mesh-${portOf(conn.url)}.json (pid ${conn.devMesh.pid}) does not answer: restart \`npx meshwork dev\``;
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(conn.url).hostname))
    return `check the URL (from ${conn.urlFrom}) and the network, or pass another --url`;
  const meshes = runningDevMeshes(conn.root).filter((m) => m.url !== conn.url);
  if (meshes.length === 0)
    return `no dev mesh is running in ${conn.root}: start one with \`npx meshwork dev\`, or pass the gateway's --url`;
  return `this project's dev mesh runs at ${meshes.map((m) => m.url).join(', ')}: pass that as --url`;
}

/** A refusal from the gateway (or from something that is not one), in one or two lines. */
function refusal(conn: Connection, path: string, status: number, text: string): CommandError {
  let error: { code?: string; message?: string } | undefined;
  let issues: ConfigIssue[] = [];
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string }; errors?: ConfigIssue[] };
    error = body.error;
    if (Array.isArray(body.errors)) issues = body.errors;
  } catch {
    // not JSON
  }
  const where = `${conn.url}${path}`;
  // "error 401 invalid_token: ..." (the gateway's code and message), as scripts have grepped for.
  const why = error
    ? `error ${status}${error.code ? ` ${printable(String(error.code))}` : ''}: ${printable(String(error.message ?? ''))}`
    : `error ${status}${text.trim() ? `: ${printable(text.trim().split('\n')[0]!.slice(0, 120))}` : ''}`;
  if (status === 404)
    return new CommandError(
      `${where} is not found (404): ${conn.url} is not a meshwork gateway, or runs an older meshwork than this CLI`,
    );
  if (status === 401) {
    const next = conn.tokenFrom.startsWith('the dev keys')
      ? 'if the dev keys were re-created since the mesh started, restart `npx meshwork dev`'
      : 'the gateway takes its MESH_ADMIN_TOKEN secret or a JWT from admin.issuers: pass it with --token or MESH_ADMIN_TOKEN';
    return new CommandError(`${conn.url} refused the admin token from ${conn.tokenFrom} (${why})\n${next}`);
  }
  if (status === 403) return new CommandError(`${conn.url} refused the token from ${conn.tokenFrom} (${why})`);
  return new CommandError(
    status >= 500 ? `${conn.url} failed (${why})` : `${conn.url} refused (${why})`,
    issues.map((i) => printable(formatIssue(i))),
  );
}

/**
 * One call to the gateway: the admin token as the bearer, never following a redirect (it could
 * carry the token elsewhere or turn a POST into a GET). Resolves with a 2xx response; every
 * other outcome is a CommandError worded for the user.
 */
export async function request(
  conn: Connection,
  path: string,
  init: { method?: string; body?: unknown; cancel?: AbortSignal } = {},
): Promise<Response> {
  const timeout = AbortSignal.timeout(TIMEOUT_MS);
  let res: Response;
  try {
    res = await fetch(`${conn.url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${conn.token}`,
        [ACTOR_HEADER]: safeUser(),
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      redirect: 'manual',
      signal: init.cancel ? AbortSignal.any([init.cancel, timeout]) : timeout,
    });
  } catch (e) {
    if (init.cancel?.aborted) throw e;
    const cause = (e as Error).cause;
    const why = timeout.aborted
      ? `no answer within ${TIMEOUT_MS / 1000}s`
      : cause instanceof Error
        ? ((cause as NodeJS.ErrnoException).code ?? cause.message)
        : (e as Error).message;
    throw new CommandError(`cannot reach ${conn.url} (${why})\n${unreachableHint(conn)}`);
  }
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel();
    throw new CommandError(
      `${conn.url} redirected to ${printable(res.headers.get('location') ?? '(nowhere)')}; pass the gateway's final URL with --url`,
    );
  }
  if (res.status < 200 || res.status >= 300) throw refusal(conn, path, res.status, await res.text());
  return res;
}

/** A call to the admin API (/_mesh/admin/<path>): its JSON body on success. */
export async function admin(
  conn: Connection,
  method: string,
  path: string,
  body?: unknown,
  cancel?: AbortSignal,
): Promise<Record<string, unknown>> {
  const res = await request(conn, `/_mesh/admin${path}`, { method, body, ...(cancel ? { cancel } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!json || typeof json !== 'object' || Array.isArray(json))
    throw new CommandError(
      `${conn.url}/_mesh/admin${path} answered ${res.status} with something that is not a meshwork admin answer (${printable(text.slice(0, 80))}); is ${conn.url} a meshwork gateway?`,
    );
  return json as Record<string, unknown>;
}
