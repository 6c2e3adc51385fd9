/**
 * What `meshwork top` draws: one frame from the gateway's TelemetryOverview
 * (GET /_mesh/admin/telemetry), the same figures the dashboard shows. Pure: no I/O and no
 * clock, so a frame is a function of the overview alone.
 */
import type { EdgeStats, TelemetryOverview } from '../../telemetry/overview.ts';
import { printable } from './output.ts';

export interface TopViewOptions {
  /** The gateway the figures came from, shown in the title line. */
  url: string;
  /** ANSI colours for the health column (a terminal that wants them; never in a pipe). */
  color?: boolean;
  /** A line under the title, e.g. why this frame is not fresh. */
  notice?: string;
}

/** Kiali's colours: green, orange, red, grey. */
const HEALTH_COLOR: Record<EdgeStats['health'], string> = {
  healthy: '\x1b[32m',
  degraded: '\x1b[33m',
  failure: '\x1b[31m',
  idle: '\x1b[90m',
};
const RESET = '\x1b[0m';

/** Hot-key values are the gateway's data (a user's sub, a client address): kept to one short cell. */
const MAX_KEY = 40;

/** A window length: whole seconds once it is 10 s or more (the object's window grows to 60 s after a start). */
export function formatSeconds(seconds: number): string {
  return seconds >= 10 ? `${Math.round(seconds)}s` : `${Number(seconds.toFixed(1))}s`;
}

export function formatRps(rps: number): string {
  if (!Number.isFinite(rps) || rps <= 0) return '0';
  if (rps < 10) return rps.toFixed(2);
  if (rps < 100) return rps.toFixed(1);
  return String(Math.round(rps));
}

export function formatErrorRate(edge: Pick<EdgeStats, 'requests' | 'errorRate'>): string {
  if (edge.requests === 0 || !Number.isFinite(edge.errorRate)) return '-';
  return `${(edge.errorRate * 100).toFixed(1)}%`;
}

export function formatMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-';
  if (ms < 10) return `${ms.toFixed(1)}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${(ms / 1000).toFixed(2)}s`;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Left-aligned columns two spaces apart; `paint` colours a cell after it is padded. */
function table(rows: string[][], paint: (row: number, col: number, cell: string) => string = (_r, _c, s) => s): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r, ri) =>
      r
        .map((c, ci) => paint(ri, ci, ci === r.length - 1 ? c : c.padEnd(widths[ci]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function byEdge(a: EdgeStats, b: EdgeStats): number {
  return a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination);
}

/** One frame of `meshwork top`, without a trailing newline. */
export function renderTop(overview: TelemetryOverview, options: TopViewOptions): string {
  const at = new Date(overview.now).toISOString().slice(11, 19);
  const t = overview.totals;
  const lines = [
    printable(`${options.url}: last ${formatSeconds(overview.windowSeconds)} at ${at} UTC`),
    `since the counters began: ${t.requests} requests, ${t.errors} errors, ${t.limited} rate limited, ${t.authFailures} auth failures, ${t.retries} retries`,
  ];
  if (options.notice) lines.push(printable(options.notice));
  lines.push('');

  // Stable order (by source, then destination), so rows do not jump between frames.
  const edges = [...overview.edges].sort(byEdge);
  if (edges.length === 0) {
    lines.push(`no traffic in the last ${formatSeconds(overview.windowSeconds)}`);
  } else {
    const rows = [['SOURCE', 'DESTINATION', 'RPS', 'ERR%', 'P50', 'P99', 'HEALTH']];
    for (const e of edges) {
      rows.push([
        printable(e.source),
        printable(e.destination),
        formatRps(e.rps),
        formatErrorRate(e),
        formatMs(e.p50Ms),
        formatMs(e.p99Ms),
        printable(e.health),
      ]);
    }
    const healthColumn = rows[0]!.length - 1;
    lines.push(
      table(rows, (r, c, cell) => {
        const color = HEALTH_COLOR[edges[r - 1]?.health as EdgeStats['health']];
        return options.color && r > 0 && c === healthColumn && color ? `${color}${cell}${RESET}` : cell;
      }),
    );
  }

  lines.push('');
  if (overview.hotKeys.length === 0) {
    lines.push('no rate-limited keys in use');
  } else {
    const rows = [['POLICY', 'KEY', 'ALLOWED', 'LIMITED']];
    // The gateway's order (most limited first, then most used).
    for (const k of overview.hotKeys) {
      rows.push([printable(k.policy), clip(printable(k.key), MAX_KEY), String(k.allowed), String(k.limited)]);
    }
    lines.push('HOT KEYS', table(rows));
  }
  return lines.join('\n');
}
