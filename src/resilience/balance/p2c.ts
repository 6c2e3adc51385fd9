/**
 * Least request by the power of two choices (Envoy's LEAST_REQUEST with choice_count 2, Linkerd's
 * balancer): pick two distinct candidates at random and take the one with fewer requests in
 * flight, the first of the two on a tie. Near the best choice at the cost of two random numbers,
 * and, unlike "the least loaded of all", it does not send every new request to the same
 * just-freed endpoint. Weights are not used (as with Envoy when all weights are equal); a weight
 * of 0 takes an endpoint out.
 */
export function p2cPick(
  candidates: readonly number[],
  inFlight: (i: number) => number,
  random: () => number = Math.random,
): number {
  const n = candidates.length;
  if (n === 0) return -1;
  if (n === 1) return candidates[0]!;
  const a = Math.floor(random() * n);
  let b = Math.floor(random() * (n - 1));
  if (b >= a) b++;
  const ia = candidates[a]!;
  const ib = candidates[b]!;
  return inFlight(ib) < inFlight(ia) ? ib : ia;
}
