/**
 * What the router needs besides patterns: prefix normalisation, segment counting and pattern
 * matching.
 */
import type { PathPattern } from '../core/path.ts';

/** Segments in a normalized prefix: "/" -> 0, "/a/b" -> 2. */
export function segmentCount(prefix: string): number {
  if (prefix === '/') return 0;
  let n = 0;
  for (let i = 0; i < prefix.length; i++) if (prefix.charCodeAt(i) === 47) n++;
  return n;
}

export function matchPattern(p: PathPattern, path: string): Record<string, string> | undefined {
  const m = p.regexp.exec(path);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  p.keys.forEach((k, i) => {
    const v = m[i + 1];
    if (v !== undefined) params[k.name] = v;
  });
  return params;
}

/** First segment of a request path ("/a/b" -> "a"). */
export function firstSegmentOf(path: string): string {
  const end = path.indexOf('/', 1);
  return end < 0 ? path.slice(1) : path.slice(1, end);
}

/** "/api/" -> "/api"; "/" stays "/". Prefixes compare by whole segments. */
export function normalizePrefix(prefix: string): string {
  let p = prefix;
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

/** The first `n` segments of a normalized path ("/a/b/c", 2 -> "/a/b"; 0 -> "/"). */
export function truncateSegments(path: string, n: number): string {
  if (n === 0) return '/';
  let seen = 0;
  for (let i = 0; i < path.length; i++) {
    if (path.charCodeAt(i) === 47 && ++seen > n) return path.slice(0, i);
  }
  return path;
}
