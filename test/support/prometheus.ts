/**
 * A real Prometheus server (Debian's `prometheus`, installed by scripts/test-deps.sh) scraping
 * the local mesh, and `promtool check metrics`, for the end-to-end observability tests.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './mesh-process.ts';

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? 'prometheus';
export const PROMTOOL_BIN = process.env.PROMTOOL_BIN ?? 'promtool';

/** One sample of an instant vector, as /api/v1/query returns it (value parsed). */
export interface Sample {
  metric: Record<string, string>;
  value: number;
}

export interface RunningPrometheus {
  url: string;
  job: string;
  output(): string;
  /** An instant query; throws on an API error (a bad expression, a failed evaluation). */
  query(expr: string): Promise<Sample[]>;
  stop(): Promise<void>;
}

export interface ScrapeTarget {
  /** host:port of the gateway. */
  address: string;
  metricsPath: string;
  /** The bearer credential, written to a file only Prometheus reads (credentials_file). */
  token: string;
  scrapeInterval?: string;
}

export async function startPrometheus(target: ScrapeTarget, timeoutMs = 60_000): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-prometheus-'));
  const credentials = join(dir, 'admin-token');
  writeFileSync(credentials, target.token, { mode: 0o600 });
  const job = 'meshwork';
  const interval = target.scrapeInterval ?? '1s';
  // JSON is YAML: no YAML writer needed, and no quoting to get wrong.
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    scrape_configs: [
      {
        job_name: job,
        metrics_path: target.metricsPath,
        scheme: 'http',
        authorization: { type: 'Bearer', credentials_file: credentials },
        static_configs: [{ targets: [target.address] }],
      },
    ],
  };
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const check = spawnSync(PROMTOOL_BIN, ['check', 'config', configFile], { encoding: 'utf8' });
  if (check.status !== 0)
    throw new Error(`promtool rejects the test's prometheus.yml:\n${check.stdout}${check.stderr}`);

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // Queries at "now" see a sample scraped a moment ago, not one up to 5 minutes old.
      '--query.lookback-delta=1m',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  let spawnError: Error | undefined;
  child.once('error', (e) => (spawnError = e));
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const query = async (expr: string): Promise<Sample[]> => {
    const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expr })}`, {
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json()) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
    };
    if (body.status !== 'success' || !body.data) throw new Error(`query ${expr}: ${body.error ?? res.status}`);
    if (body.data.resultType !== 'vector') throw new Error(`query ${expr}: a ${body.data.resultType}, not a vector`);
    return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  };

  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`cannot start ${PROMETHEUS_BIN} (run scripts/test-deps.sh): ${spawnError.message}`);
    if (child.exitCode !== null) throw new Error(`prometheus exited early (code ${child.exitCode}):\n${log}`);
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return { url, job, output: () => log, query, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`prometheus did not become ready on ${url}:\n${log}`);
}

/**
 * Polls `expr` until `accept` holds for its result, returning that result; after `timeoutMs`,
 * fails with what the query last returned.
 */
export async function pollQuery(
  prom: RunningPrometheus,
  expr: string,
  accept: (samples: Sample[]) => boolean,
  timeoutMs = 60_000,
): Promise<Sample[]> {
  const deadline = Date.now() + timeoutMs;
  let last: Sample[] | string = 'nothing yet';
  while (Date.now() < deadline) {
    try {
      last = await prom.query(expr);
      if (accept(last)) return last;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(
    `${expr}\ndid not give the expected result within ${timeoutMs} ms; last saw:\n${
      typeof last === 'string' ? last : JSON.stringify(last, null, 1)
    }`,
  );
}

/** `sum by (labels) (...)` results as a map from "a=x,b=y" to the value. */
export function byLabels(samples: Sample[], labels: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) out[labels.map((l) => `${l}=${s.metric[l] ?? ''}`).join(',')] = s.value;
  return out;
}

/** `promtool check metrics` over a metrics text: its exit code and everything it printed. */
export function promtoolCheckMetrics(text: string): { code: number | null; output: string } {
  const r = spawnSync(PROMTOOL_BIN, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run ${PROMTOOL_BIN} (run scripts/test-deps.sh): ${r.error.message}`);
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

/** One sample line of a Prometheus text exposition. */
export interface TextSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (format 0.0.4); comments and blank lines skipped. */
export function parseMetrics(text: string): TextSample[] {
  const out: TextSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}
