/**
 * Which local mesh this checkout started: `npm run dev` records its URL and process id in
 * .meshwork/dev-mesh-<port>.json while it runs. The CLI sends the local dev admin token only to
 * a URL recorded there by a process still alive, never to whatever else listens on a local port.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DevMesh {
  url: string;
  pid: number;
}

function fileFor(root: string, port: number): string {
  return join(root, '.meshwork', `dev-mesh-${port}.json`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function recordDevMesh(root: string, mesh: DevMesh): () => void {
  const port = Number(new URL(mesh.url).port);
  const file = fileFor(root, port);
  mkdirSync(join(root, '.meshwork'), { recursive: true });
  writeFileSync(file, `${JSON.stringify(mesh)}\n`, { mode: 0o600 });
  return () => rmSync(file, { force: true });
}

/** The mesh this checkout started at `url`, if one runs there. */
export function startedMesh(root: string, url: string): DevMesh | undefined {
  const port = Number(new URL(url).port || (url.startsWith('https:') ? 443 : 80));
  const file = fileFor(root, port);
  if (!existsSync(file)) return undefined;
  try {
    const mesh = JSON.parse(readFileSync(file, 'utf8')) as DevMesh;
    const sameHost = new URL(mesh.url).port === new URL(url).port;
    return sameHost && alive(mesh.pid) ? mesh : undefined;
  } catch {
    return undefined;
  }
}
