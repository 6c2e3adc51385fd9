/**
 * CLI commands that read a gateway's telemetry: `metrics` (the Prometheus text of
 * GET /_mesh/metrics, as a scraper sees it) and `top` (the edges and hot keys of
 * GET /_mesh/admin/telemetry, redrawn until Ctrl-C). Same --url / --token and admin credential
 * as the control-plane commands (control.ts).
 */
import { parseArgs } from 'node:util';
import type { TelemetryOverview } from '../../telemetry/overview.ts';
import { CONNECTION, connection, printable, UsageError, type Connection } from './control.ts';
import { renderTop } from './top-view.ts';

/** A failed call, already worded for the user. */
class CallError extends Error {}

async function get(conn: Connection, path: string, cancel?: AbortSignal): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(`${conn.url}${path}`, {
      headers: { authorization: `Bearer ${conn.token}` },
      // Never follow: a redirect could carry the token elsewhere.
      redirect: 'manual',
      signal: cancel ? AbortSignal.any([cancel, AbortSignal.timeout(15_000)]) : AbortSignal.timeout(15_000),
    });
  } catch (e) {
    const cause = (e as Error).cause;
    throw new CallError(
      `cannot reach ${conn.url} (${cause instanceof Error ? String(cause) : (e as Error).message}); is the mesh running?`,
    );
  }
  if (res.status >= 300 && res.status < 400) {
    throw new CallError(
      `${conn.url} redirected to ${res.headers.get('location') ?? '(nowhere)'}; pass the gateway's final URL with --url`,
    );
  }
  if (res.status !== 200) {
    // The mesh's errors are JSON ({ error: { code, message } }); anything else is shown as text.
    const text = await res.text();
    let detail = text.slice(0, 200);
    try {
      const error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      if (error) detail = `${error.code ? `${error.code}: ` : ''}${error.message ?? ''}`;
    } catch {
      // not JSON: the text as it is
    }
    throw new CallError(`error ${res.status} from ${conn.url}${path}: ${printable(detail)}`);
  }
  return res;
}

export async function metrics(args: string[], root: string): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: CONNECTION });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const conn = connection(values, root);
  let res: Response;
  try {
    res = await get(conn, '/_mesh/metrics');
  } catch (e) {
    if (!(e instanceof CallError)) throw e;
    console.error(e.message);
    return 1;
  }
  const type = res.headers.get('content-type') ?? '';
  const text = await res.text();
  if (!type.startsWith('text/plain')) {
    console.error(`${conn.url}/_mesh/metrics answered ${type || 'no content type'}, not Prometheus text`);
    return 1;
  }
  // Exactly what a scraper gets when piped (| promtool check metrics, > file); on a terminal,
  // control characters in label values are shown, never interpreted.
  process.stdout.write(process.stdout.isTTY ? printable(text) : text);
  return 0;
}

async function overview(conn: Connection, cancel?: AbortSignal): Promise<TelemetryOverview> {
  const res = await get(conn, '/_mesh/admin/telemetry', cancel);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CallError(
      `${conn.url} answered the telemetry call with something that is not JSON: ${printable(text.slice(0, 200))}`,
    );
  }
  const o = json as Partial<TelemetryOverview> | null;
  if (!o || !Array.isArray(o.edges) || !Array.isArray(o.hotKeys) || typeof o.now !== 'number' || !o.totals)
    throw new CallError(
      `${conn.url} answered the telemetry call with something unexpected: ${printable(text.slice(0, 200))}`,
    );
  return o as TelemetryOverview;
}

function parseInterval(text: string): number {
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 0.5 || seconds > 3600)
    throw new UsageError(`--interval must be a number of seconds from 0.5 to 3600, got "${text}"`);
  return seconds;
}

export async function top(args: string[], root: string): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...CONNECTION, interval: { type: 'string', default: '2' }, once: { type: 'boolean' } },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const interval = parseInterval(values.interval);
  const conn = connection(values, root);
  const tty = process.stdout.isTTY === true;
  const color = tty && !process.env.NO_COLOR;

  // The first frame decides: a wrong URL or token is an error now, not a screen that retries.
  let last: TelemetryOverview;
  try {
    last = await overview(conn);
  } catch (e) {
    if (!(e instanceof CallError)) throw e;
    console.error(e.message);
    return 1;
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
        if (!(e instanceof CallError)) throw e;
        // A gateway restarting or a network blip: keep the last figures, say why, keep trying.
        notice = `${e.message} Showing the figures from ${new Date(last.now).toISOString().slice(11, 19)} UTC; retrying every ${interval}s.`;
      }
      if (!stopped) draw(renderTop(last, { url: conn.url, color, notice }));
    }
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
  return 0;
}
