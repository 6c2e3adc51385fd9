/**
 * Smooth weighted round robin, nginx's algorithm: every pick adds each item's weight to its
 * current value, takes the largest and subtracts the total from it. Weights 5:1:1 give
 * `a a b a c a a`: the same shares as random weighted choice, but spread evenly and exact over
 * every cycle of `total` picks. Equal weights are plain round robin.
 *
 * State is the array of current values: per isolate, kept across picks (MeshRuntime), and
 * rebuilt when the item list changes.
 */
export interface SmoothState {
  readonly weights: readonly number[];
  readonly current: number[];
  readonly total: number;
}

export function smoothState(weights: readonly number[]): SmoothState {
  return { weights, current: weights.map(() => 0), total: weights.reduce((a, w) => a + Math.max(0, w), 0) };
}

/**
 * The index to use, or -1 when nothing may be picked. `allowed(i)` leaves items out (ejected
 * endpoints) without disturbing the others' rotation.
 */
export function smoothPick(state: SmoothState, allowed: (i: number) => boolean = () => true): number {
  let best = -1;
  let total = 0;
  for (let i = 0; i < state.weights.length; i++) {
    const w = state.weights[i]!;
    if (w <= 0 || !allowed(i)) continue;
    state.current[i]! += w;
    total += w;
    if (best < 0 || state.current[i]! > state.current[best]!) best = i;
  }
  if (best >= 0) state.current[best]! -= total;
  return best;
}
