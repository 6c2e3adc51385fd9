/**
 * Running the CLI as a user does (`node bin/meshwork.js ...`), isolated from the machine's own
 * settings, and a stand-in for a gateway's admin API (a local node:http server, as the other
 * CLI tests use) for the commands that call one.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../../..');
const BIN = join(REPO, 'bin/meshwork.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function tempDir(prefix = 'meshwork-cli-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * The CLI, without blocking this process (which may be serving it). Its environment has no
 * gateway or token of the machine's (MESHWORK_URL, MESH_ADMIN_TOKEN) and a config file of its
 * own (MESHWORK_CONFIG, fresh unless given), so a developer's saved contexts never leak in.
 */
export function meshwork(
  args: string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<Run> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    MESHWORK_URL: undefined,
    MESH_ADMIN_TOKEN: undefined,
    MESHWORK_DEBUG: undefined,
    MESHWORK_CONFIG: join(tempDir('meshwork-config-'), 'config.json'),
    ...options.env,
  };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: options.cwd ?? REPO, env: env as NodeJS.ProcessEnv, encoding: 'utf8' },
      (e, stdout, stderr) => done({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr }),
    );
  });
}

export interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
}

export type Answer = { status?: number; json?: unknown; text?: string; type?: string };

/** A stand-in gateway: `answer` gets each request (its JSON body parsed) and says what to send. */
export async function withGateway(
  answer: (req: Seen) => Answer,
  run: (url: string, seen: Seen[]) => Promise<void>,
): Promise<void> {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? '',
        path: req.url ?? '',
        authorization: req.headers.authorization,
        body: raw ? JSON.parse(raw) : undefined,
      };
      seen.push(s);
      const a = answer(s);
      res.statusCode = a.status ?? 200;
      res.setHeader('content-type', a.type ?? (a.json !== undefined ? 'application/json' : 'text/plain'));
      res.end(a.json !== undefined ? JSON.stringify(a.json) : (a.text ?? ''));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

/** The lines of `text`, without a trailing empty one. */
export function lines(text: string): string[] {
  return text.replace(/\n$/, '').split('\n');
}
