/**
 * Measurement helpers beside autocannon: unloaded latency with microsecond timing (autocannon
 * records whole milliseconds, and under load latency is mostly queueing), and isolate heap size
 * through workerd's inspector.
 */
import { Agent, request } from 'node:http';
import WebSocket from 'ws';

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  count: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** `concurrency` keep-alive connections sending requests back to back for `seconds`. */
export async function latency(
  url: string,
  headers: Record<string, string> | undefined,
  seconds: number,
  concurrency = 2,
): Promise<Latency> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const samples: number[] = [];
  let errors = 0;
  const deadline = Date.now() + seconds * 1000;
  const one = () =>
    new Promise<void>((resolve) => {
      const start = process.hrtime.bigint();
      const req = request(url, { agent, headers }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) samples.push(Number(process.hrtime.bigint() - start) / 1e6);
          else errors++;
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end();
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) await one();
    }),
  );
  agent.destroy();
  samples.sort((a, b) => a - b);
  return {
    p50: percentile(samples, 50),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    count: samples.length,
    errors,
  };
}

/** Used JS heap of a worker's isolate, MB, via the inspector (Runtime.getHeapUsage). */
export async function heapUsedMB(inspectorPort: number, worker: string): Promise<number> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as Array<{
    id: string;
    webSocketDebuggerUrl: string;
  }>;
  const target = targets.find((t) => t.id === `core:user:${worker}`);
  if (!target) throw new Error(`no inspector target for ${worker} (have ${targets.map((t) => t.id).join(', ')})`);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  try {
    const result = await new Promise<{ usedSize: number }>((resolve, reject) => {
      ws.on('message', (data) => {
        const msg = JSON.parse((data as Buffer).toString('utf8')) as {
          id?: number;
          result?: { usedSize: number };
          error?: unknown;
        };
        if (msg.id !== 1) return;
        if (msg.result) resolve(msg.result);
        else reject(new Error(JSON.stringify(msg.error)));
      });
      ws.send(JSON.stringify({ id: 1, method: 'Runtime.getHeapUsage' }));
    });
    return result.usedSize / (1024 * 1024);
  } finally {
    ws.close();
  }
}
