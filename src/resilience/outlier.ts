/**
 * Outlier detection per endpoint, Envoy's consecutive-5xx detector and its ejection rules:
 *
 * - An endpoint that answers `consecutive5xx` times in a row with a 5xx, or cannot be reached
 *   (a gateway failure), is ejected: taken out of rotation for `baseEjectionTime` times the
 *   number of times it has been ejected, at most `maxEjectionTime`.
 * - At most `maxEjectionPercent` of a set's endpoints are out at once (at least one may be, as in
 *   Envoy, so a set of three can lose its one bad endpoint at the default 10%).
 * - Every `interval` an endpoint that is in rotation and was not ejected during it has its
 *   ejection count lowered by one, so an endpoint that recovered is soon treated as new again.
 *
 * Pure functions of the state and an injected clock; the state lives per isolate in MeshRuntime
 * (each isolate judges for itself, as each Envoy does), keyed by endpoint key, so it outlives a
 * config change for endpoints that remain.
 */
export interface OutlierPolicy {
  consecutive5xx: number;
  intervalMs: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  maxEjectionPercent: number;
}

/** Envoy's defaults. */
export const DEFAULT_OUTLIER: OutlierPolicy = {
  consecutive5xx: 5,
  intervalMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 10,
};

export interface OutlierState {
  consecutive: number;
  ejections: number;
  /** In rotation again from this time (0: not ejected). */
  ejectedUntil: number;
  /** When the ejection count was last lowered, or the last ejection. */
  lastDecay: number;
}

export const freshOutlier = (now: number): OutlierState => ({
  consecutive: 0,
  ejections: 0,
  ejectedUntil: 0,
  lastDecay: now,
});

export function isEjected(s: OutlierState, now: number): boolean {
  return s.ejectedUntil > now;
}

/** Lowers the ejection count by one per whole interval spent in rotation. */
function decay(s: OutlierState, p: OutlierPolicy, now: number): void {
  if (isEjected(s, now) || s.ejections === 0) {
    if (s.ejections === 0) s.lastDecay = now;
    return;
  }
  const since = Math.max(s.lastDecay, s.ejectedUntil);
  const steps = Math.floor((now - since) / p.intervalMs);
  if (steps > 0) {
    s.ejections = Math.max(0, s.ejections - steps);
    s.lastDecay = since + steps * p.intervalMs;
  }
}

/**
 * Records one answer. `failed`: a 5xx or no answer. `ejectedNow`: how many of the set are out now
 * (including this one if it is), `setSize` the endpoints in the set. True when this call ejected
 * the endpoint.
 */
export function recordOutcome(
  s: OutlierState,
  p: OutlierPolicy,
  failed: boolean,
  now: number,
  ejectedNow: number,
  setSize: number,
): boolean {
  decay(s, p, now);
  if (!failed) {
    s.consecutive = 0;
    return false;
  }
  s.consecutive++;
  if (s.consecutive < p.consecutive5xx || isEjected(s, now)) return false;
  const allowed = Math.max(1, Math.floor((setSize * p.maxEjectionPercent) / 100));
  // Never the last one: with nothing left there is nothing to fail over to.
  if (ejectedNow >= allowed || ejectedNow >= setSize - 1) return false;
  s.ejections++;
  s.ejectedUntil = now + Math.min(p.baseEjectionMs * s.ejections, p.maxEjectionMs);
  s.consecutive = 0;
  s.lastDecay = now;
  return true;
}
