/**
 * CLI commands that read a gateway's telemetry: `metrics` (the Prometheus text of
 * GET /_mesh/metrics, as a scraper sees it) and `top` (the edges and hot keys of
 * GET /_mesh/admin/telemetry, redrawn until Ctrl-C). Same gateway and admin credential as the
 * control-plane commands (gateway.ts).
 */
import type { TelemetryOverview } from '../../telemetry/overview.ts';
import { CommandError, defineCommand, UsageError, type OptionSpec } from './command.ts';
import { admin, connection, GATEWAY_HELP, GATEWAY_OPTIONS, request, type Connection } from './gateway.ts';
import { emit, OUTPUT_OPTION, outputFormat, printable } from './output.ts';
import { parsePrometheusText, PrometheusTextError } from './prometheus-text.ts';
import { renderTop } from './top-view.ts';

export const metrics = defineCommand({
  name: 'metrics',
  summary: "the gateway's Prometheus metrics (GET /_mesh/metrics), as a scraper sees them",
  usage: '[-o json|yaml] [--url <URL>] [--token <TOKEN>]',
  help: `Prints the Prometheus text exactly as served when piped (| promtool check metrics, > file); on
a terminal, control characters in label values are shown as escapes.

With -o json|yaml: the samples, parsed: [{ name, type, labels, value, timestamp? }], where type
is the family's TYPE (a histogram's _bucket, _sum and _count samples are "histogram") and a
value JSON cannot hold (+Inf, -Inf, NaN) is a string.

${GATEWAY_HELP}`,
  options: { ...OUTPUT_OPTION, ...GATEWAY_OPTIONS },
  async run({ values }) {
    const format = outputFormat(values);
    const conn = connection(values);
    const res = await request(conn, '/_mesh/metrics');
    const type = res.headers.get('content-type') ?? '';
    const text = await res.text();
    if (!type.startsWith('text/plain'))
      throw new CommandError(
        `${conn.url}/_mesh/metrics answered ${printable(type) || 'no content type'}, not Prometheus text; is ${conn.url} a meshwork gateway?`,
      );
    if (format !== 'text') {
      try {
        emit(format, parsePrometheusText(text));
      } catch (e) {
        if (!(e instanceof PrometheusTextError)) throw e;
        throw new CommandError(`${conn.url}/_mesh/metrics is not valid Prometheus text (${printable(e.message)})`);
      }
      return 0;
    }
    process.stdout.write(process.stdout.isTTY ? printable(text) : text);
    return 0;
  },
});

async function overview(conn: Connection, cancel?: AbortSignal): Promise<TelemetryOverview> {
  const o = (await admin(conn, 'GET', '/telemetry', undefined, cancel)) as Partial<TelemetryOverview>;
  if (!Array.isArray(o.edges) || !Array.isArray(o.hotKeys) || typeof o.now !== 'number' || !o.totals)
    throw new CommandError(
      `${conn.url} answered the telemetry call with something unexpected: ${printable(JSON.stringify(o).slice(0, 200))}`,
    );
  return o as TelemetryOverview;
}

function parseInterval(text: string): number {
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 0.5 || seconds > 3600)
    throw new UsageError(`--interval must be a number of seconds from 0.5 to 3600, got "${text}"`);
  return seconds;
}

export const TOP_OPTIONS = {
  interval: {
    type: 'string',
    default: '2',
    value: 'seconds',
    description: 'seconds between frames, 0.5 to 3600 (default 2)',
  },
  once: { type: 'boolean', description: 'one frame, then exit' },
} as const satisfies Record<string, OptionSpec>;

/** `top`, and `status --watch`. */
export async function runTop(values: {
  interval: string;
  once?: boolean | undefined;
  output?: string | undefined;
  json?: boolean | undefined;
  url?: string | undefined;
  token?: string | undefined;
}): Promise<number> {
  const format = values.json ? 'json' : outputFormat(values);
  const interval = parseInterval(values.interval);
  if (format !== 'text' && !values.once) throw new UsageError(`-o ${format} prints one overview: add --once`);
  const conn = connection(values);
  const tty = process.stdout.isTTY === true;
  const color = tty && !process.env.NO_COLOR;

  // The first frame decides: a wrong URL or token is an error now, not a screen that retries.
  let last = await overview(conn);
  if (format !== 'text') {
    emit(format, last);
    return 0;
  }
  if (values.once) {
    console.log(renderTop(last, { url: conn.url, color }));
    return 0;
  }

  // Redrawn in place on a terminal (cursor home, clear); frames one after another in a pipe.
  const draw = (frame: string) => process.stdout.write(tty ? `\x1b[H\x1b[2J${frame}\n` : `${frame}\n\n`);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  // Ctrl-C ends the wait and any call in flight at once.
  const cancel = new AbortController();
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    cancel.abort();
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    draw(renderTop(last, { url: conn.url, color, notice: `every ${interval}s; Ctrl-C to quit` }));
    while (!stopped) {
      await new Promise<void>((r) => {
        wake = r;
        timer = setTimeout(r, interval * 1000);
      });
      if (stopped) break;
      let notice = `every ${interval}s; Ctrl-C to quit`;
      try {
        last = await overview(conn, cancel.signal);
      } catch (e) {
        if (stopped) break;
        if (!(e instanceof CommandError)) throw e;
        // A gateway restarting or a network blip: keep the last figures, say why, keep trying.
        notice = `${e.message.replace(/\n/g, '; ')}. Showing the figures from ${new Date(last.now).toISOString().slice(11, 19)} UTC; retrying every ${interval}s.`;
      }
      if (!stopped) draw(renderTop(last, { url: conn.url, color, notice }));
    }
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
  return 0;
}

export const top = defineCommand({
  name: 'top',
  summary: 'live traffic per caller -> service edge, and the hot rate-limit keys',
  usage: '[--interval 2] [--once] [-o json|yaml] [--url <URL>] [--token <TOKEN>]',
  help: `Requests per second, error rate, p50/p99 latency and health of every caller -> service edge
over the last minute, and the rate-limit keys in use, redrawn every --interval seconds until
Ctrl-C (a gateway that stops answering keeps its last figures on screen, with the reason). Also
meshwork status --watch.

With --once -o json|yaml: the admin API's telemetry overview, { now, windowSeconds, edges,
hotKeys, totals }.

${GATEWAY_HELP}`,
  options: { ...TOP_OPTIONS, ...OUTPUT_OPTION, ...GATEWAY_OPTIONS },
  run: ({ values }) => runTop(values),
});
