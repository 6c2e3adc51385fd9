/**
 * Consistent hashing on a ring (Envoy's RING_HASH): each endpoint owns many points on a 32-bit
 * ring (more for a larger weight), a request's key hashes to a point and goes to the next
 * endpoint point clockwise. Adding or removing one of n endpoints moves about 1/n of the keys;
 * the rest keep their endpoint. Built once per endpoint set (config or registry change).
 *
 * The hash is 32-bit FNV-1a with murmur3's finalizer: not cryptographic (a client choosing keys
 * can only pick its own endpoint), but well spread for similar keys ("user-1", "user-2").
 */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export interface Ring {
  /** Sorted points. */
  readonly points: Uint32Array;
  /** Item index owning each point. */
  readonly owners: Uint32Array;
}

/** Points per unit of weight: Envoy's default minimum ring size is 1,024 for a few endpoints. */
export const POINTS_PER_WEIGHT = 160;

/** `names` identify the items stably (endpoint keys), so a ring rebuilt elsewhere agrees. */
export function buildRing(names: readonly string[], weights: readonly number[]): Ring {
  const entries: Array<[number, number]> = [];
  names.forEach((name, i) => {
    const count = Math.round(POINTS_PER_WEIGHT * Math.max(0, weights[i] ?? 1));
    for (let p = 0; p < count; p++) entries.push([hash32(`${name}#${p}`), i]);
  });
  entries.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  return { points: Uint32Array.from(entries, (e) => e[0]), owners: Uint32Array.from(entries, (e) => e[1]) };
}

/**
 * The item for `key`: the owner of the first point at or after its hash, walking on past items
 * `allowed` refuses (an ejected endpoint's keys go to its ring neighbours, and come back when it
 * does). -1 when the ring is empty or nothing is allowed.
 */
export function ringPick(ring: Ring, key: string, allowed: (i: number) => boolean = () => true): number {
  const n = ring.points.length;
  if (n === 0) return -1;
  const h = hash32(key);
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ring.points[mid]! < h) lo = mid + 1;
    else hi = mid;
  }
  for (let k = 0; k < n; k++) {
    const owner = ring.owners[(lo + k) % n]!;
    if (allowed(owner)) return owner;
  }
  return -1;
}
