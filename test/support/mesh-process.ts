/**
 * Starts the local mesh exactly as `npm run dev` does (`meshwork dev`, i.e. wrangler dev with
 * every worker meshwork.yaml lists) on a free port, for end-to-end tests that send real HTTP to it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localFetch } from './local-http.ts';

export interface RunningMesh {
  url: string;
  output(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export async function startMesh(options: { timeoutMs?: number; persistTo?: string } = {}): Promise<RunningMesh> {
  const port = await freePort();
  const persistTo = options.persistTo ?? mkdtempSync(join(tmpdir(), 'meshwork-state-'));
  const child: ChildProcess = spawn(
    process.execPath,
    ['bin/meshwork.js', 'dev', '--port', String(port), '--persist-to', persistTo],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group: stop() takes wrangler and workerd down together
    },
  );
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 5000);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`local mesh exited early (code ${child.exitCode}):\n${log}`);
    try {
      const res = await localFetch(`${url}/_mesh/health`);
      // The gateway answers before the services finish loading; wait for the whole mesh.
      if (res.ok && (await localFetch(`${url}/service-b`)).ok) return { url, output: () => log, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error(`local mesh did not become ready on ${url}:\n${log}`);
}
