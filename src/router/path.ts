/**
 * Path patterns (`/users/:id`, `/files/*rest`) compiled once with path-to-regexp, plus what
 * the router needs to rank and index them.
 */
import { parse, pathToRegexp, type Key } from 'path-to-regexp';

export interface PathPattern {
  source: string;
  regexp: RegExp;
  keys: readonly Key[];
  /** Literal characters outside parameters: more means more specific. */
  staticChars: number;
  /** The first path segment when it is literal, so lookups only test plausible patterns. */
  firstSegment: string | undefined;
}

export function compilePathPattern(source: string): PathPattern {
  const data = parse(source);
  const { regexp, keys } = pathToRegexp(data, { sensitive: true, end: true, trailing: true });
  let staticChars = 0;
  for (const t of data.tokens) if (t.type === 'text') staticChars += t.value.length;
  const lead = data.tokens[0];
  let firstSegment: string | undefined;
  if (lead?.type === 'text') {
    const rest = lead.value.slice(1);
    const slash = rest.indexOf('/');
    if (slash > 0) firstSegment = rest.slice(0, slash);
  }
  return { source, regexp, keys, staticChars, firstSegment };
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
