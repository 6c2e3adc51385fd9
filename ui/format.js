/** How the dashboard writes numbers, durations and times. Pure functions. */

/** Requests per second: two significant figures, never "0" for a trickle. */
export function formatRate(rps) {
  if (!Number.isFinite(rps) || rps <= 0) return '0 rps';
  if (rps < 0.01) return '<0.01 rps';
  if (rps < 10) return `${rps.toFixed(2).replace(/\.?0+$/, '')} rps`;
  return `${Math.round(rps)} rps`;
}

/** A 0..1 ratio as a percentage: 0.1% resolution below 10%, where the health thresholds are. */
export function formatPercent(ratio) {
  if (!Number.isFinite(ratio) || ratio <= 0) return '0%';
  const pct = ratio * 100;
  if (pct < 0.1) return '<0.1%';
  if (pct < 10) return `${pct.toFixed(1)}%`;
  return `${Math.round(pct)}%`;
}

export function formatMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** A duration in seconds as the routes files write it (10s, 1m, 1h). */
export function formatPeriod(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  return `${seconds}s`;
}

/** How long ago `iso` was, from `now` (ms). */
export function formatAgo(iso, now) {
  if (!iso) return '–';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function formatCount(n) {
  if (!Number.isFinite(n)) return '–';
  if (n < 10_000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(1).replace(/\.0$/, '')}k`;
  return `${(n / 1_000_000).toFixed(1).replace(/\.0$/, '')}M`;
}
