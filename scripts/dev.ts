/**
 * `npm run dev`: the whole example mesh (gateway, service-a, service-b v1 and v2) in workerd
 * through `wrangler dev`, on 127.0.0.1:8787, with KV/Durable Object state under .wrangler/state.
 *
 *   npm run dev -- [--port 8787] [--persist-to .wrangler/state]
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureDevKeys } from '../src/node/cli/keys.ts';
import { recordDevMesh } from '../src/node/dev/mesh-file.ts';
import { MESH_WORKER_CONFIGS, MESH_WORKERS, QUIET_WRANGLER_ENV } from '../src/node/dev/workers.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '8787' },
    'persist-to': { type: 'string', default: '.wrangler/state' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`meshwork dev: --port must be a TCP port, got "${values.port}"`);
  process.exit(2);
}

// Local keys (dev token issuer, one signing key per mesh member) on first run, in .meshwork/
// and each worker's .dev.vars; all git-ignored.
await ensureDevKeys(root, MESH_WORKERS);

const wranglerBin = join(dirname(createRequire(import.meta.url).resolve('wrangler/package.json')), 'bin/wrangler.js');
const args = [wranglerBin, 'dev', ...MESH_WORKER_CONFIGS.flatMap((c) => ['-c', c])];
args.push(
  '--ip',
  '127.0.0.1',
  '--port',
  String(port),
  '--persist-to',
  values['persist-to'],
  '--show-interactive-dev-session=false',
);

const child = spawn(process.execPath, args, {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, ...QUIET_WRANGLER_ENV, MESHWORK_DEV: '1' },
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

const base = `http://127.0.0.1:${port}`;
// The CLI sends the local admin token only to the mesh recorded here (while this process lives).
const forget = recordDevMesh(root, { url: base, pid: process.pid });
process.on('exit', forget);
const deadline = Date.now() + 120_000;
while (Date.now() < deadline && child.exitCode === null) {
  try {
    const res = await fetch(`${base}/_mesh/health`);
    if (res.ok) {
      // One request through the mesh: the service it reaches registers itself, and the
      // registry then wakes the others (see docs/registry.md).
      await fetch(`${base}/service-b`).catch(() => undefined);
      console.log(`
meshwork is running: gateway ${base} -> service-a -> service-b (v1 90% / v2 10%)

  curl -si ${base}/service-a                      # 401: /service-a needs a token
  TOKEN=$(npx meshwork token --sub alice --scope read:a --ttl 1h | tail -1)
  curl -s -H "authorization: Bearer $TOKEN" ${base}/service-a   # gateway -> service-a -> service-b
  curl -si ${base}/service-b                      # public; see x-service-version: v1 or v2
  curl -s ${base}/_mesh/health
  npx meshwork status                             # the registry: services, versions, health
  npx meshwork diff && npx meshwork apply         # change routes/ and apply without a redeploy

Edit routes/*.yaml and the workers reload with them, or apply them live with meshwork apply.
Ctrl-C stops it.
`);
      break;
    }
  } catch {
    // not up yet
  }
  await new Promise((r) => setTimeout(r, 300));
}
