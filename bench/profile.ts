/**
 * Where a scenario's CPU goes: loads one bench gateway (as `npm run bench` does) while the V8
 * profiler of each worker on the request path samples it, then prints each worker's busiest
 * functions (self time) and its share of the process's CPU.
 *
 *   npm run bench:profile -- [--worker gw-full] [--users 1000] [--seconds 5]
 *
 * --users n rotates n users' tokens (as the full-users scenario); 0 sends no token.
 */
import autocannon from 'autocannon';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { cpuNs, workerdPid } from './cpu.ts';
import { startBenchMesh } from './mesh.ts';
import { gateways } from './configs.ts';

const { values } = parseArgs({
  options: {
    worker: { type: 'string', default: 'gw-full' },
    users: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '5' },
    path: { type: 'string', default: '/service-b' },
    top: { type: 'string', default: '25' },
  },
});

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

class Inspector {
  #id = 0;
  readonly #pending = new Map<number, (r: unknown) => void>();
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown };
      if (msg.id !== undefined) this.#pending.get(msg.id)?.(msg.result);
    });
  }
  static async open(port: number, worker: string): Promise<Inspector> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as Array<{
      id: string;
      webSocketDebuggerUrl: string;
    }>;
    const t = targets.find((x) => x.id === `core:user:${worker}`);
    if (!t) throw new Error(`no inspector target for ${worker}`);
    const ws = new WebSocket(t.webSocketDebuggerUrl);
    await new Promise((ok, fail) => {
      ws.once('open', ok);
      ws.once('error', fail);
    });
    return new Inspector(ws);
  }
  send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.#id;
    this.ws.send(JSON.stringify({ id, method, params }));
    return new Promise((ok) => this.#pending.set(id, ok as (r: unknown) => void));
  }
}

const mesh = await startBenchMesh(gateways);
const pid = workerdPid();

try {
  const users = Number(values.users);
  const sets = await Promise.all(
    Array.from({ length: Math.max(users, 1) }, async (_, i) =>
      users === 0 ? {} : { authorization: `Bearer ${await mesh.userToken(`profile-${i}`, ['read:b'])}` },
    ),
  );
  const url = new URL(values.path, await mesh.url(values.worker)).href;
  let next = 0;
  const run = (seconds: number, amount?: number) =>
    new Promise<autocannon.Result>((ok, fail) =>
      autocannon(
        {
          url,
          connections: 32,
          ...(amount ? { amount } : { duration: seconds }),
          requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, headers: sets[next++ % sets.length] }) }],
        },
        (e, r) => (e ? fail(e instanceof Error ? e : new Error(String(e))) : ok(r)),
      ),
    );
  await run(0, Math.max(2 * sets.length, 2000)); // warm-up: every user seen twice at least
  const workers = [values.worker, 'service-b'];
  const inspectors = await Promise.all(workers.map((w) => Inspector.open(mesh.inspectorPort, w)));
  for (const i of inspectors) {
    await i.send('Profiler.enable');
    await i.send('Profiler.setSamplingInterval', { interval: 100 });
    await i.send('Profiler.start');
  }
  const before = pid === undefined ? 0 : cpuNs(pid);
  const r = await run(Number(values.seconds));
  const spent = pid === undefined ? 0 : cpuNs(pid) - before;
  console.log(
    `${values.worker}, ${users} user(s): ${Math.round(r.requests.average)} req/s, ${r.non2xx} non-2xx, ` +
      `${pid === undefined ? '?' : Math.round(spent / r.requests.total / 1000)} µs process CPU per request`,
  );
  for (const [n, i] of inspectors.entries()) {
    const { profile } = await i.send<{
      profile: { nodes: ProfileNode[]; startTime: number; endTime: number; timeDeltas: number[] };
    }>('Profiler.stop');
    const total = profile.nodes.reduce((s, x) => s + (x.hitCount ?? 0), 0);
    const byFn = new Map<string, number>();
    for (const node of profile.nodes) {
      const f = node.callFrame;
      const file = f.url.split('/').at(-1) ?? '';
      const name = `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}`;
      byFn.set(name, (byFn.get(name) ?? 0) + (node.hitCount ?? 0));
    }
    const idle = byFn.get('(idle) :0') ?? 0;
    const busy = total - idle;
    const usPerReq = ((profile.endTime - profile.startTime) * (busy / total)) / r.requests.total;
    console.log(`\n${workers[n]}: ${busy} busy samples of ${total}, ~${Math.round(usPerReq)} µs JS thread per request`);
    for (const [name, hits] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top)))
      if (name !== '(idle) :0') console.log(`  ${((100 * hits) / busy).toFixed(1).padStart(5)}%  ${name}`);
    i.ws.close();
  }
} finally {
  await mesh.close();
}
