/**
 * Request path forms shared by config validation, the router and the gateway: configured paths
 * and request paths must be compared in the same form, or a route can be slipped past. Path
 * patterns (`/users/:id`, `/files/*rest`) are compiled here once, with path-to-regexp, so the
 * validator and the router cannot disagree about what a pattern means.
 */
import { parse, pathToRegexp, type Key } from 'path-to-regexp';

export interface PathPattern {
  source: string;
  regexp: RegExp;
  keys: readonly Key[];
  /** Whole literal segments before the first parameter: ranks the pattern against prefixes. */
  literalSegments: number;
  /** Literal characters outside parameters: more means more specific. */
  staticChars: number;
  /** The first path segment when it is literal, so lookups only test plausible patterns. */
  firstSegment: string | undefined;
}

/**
 * Request paths arrive percent-encoded, so config paths are compared in the same form:
 * non-ASCII characters (and controls) are encoded as UTF-8, e.g. /café -> /caf%C3%A9.
 */
export function encodePath(path: string): string {
  return path.replace(/[^\x21-\x7E]/gu, (c) => encodeURIComponent(c));
}

const ENCODED_UNRESERVED = /%(?:4[1-9A-Fa-f]|5[0-9Aa]|6[1-9A-Fa-f]|7[0-9Aa]|3[0-9]|2[DEde]|5[Ff]|7[Ee])/g;

/**
 * Decodes percent-encoded unreserved characters (RFC 3986 6.2.2.2: letters, digits, "-._~"),
 * which mean the same as the plain characters. Routes match, and backends receive, this form:
 * otherwise /svc/%61dmin would slip past a route for /svc/admin and reach the same handler.
 */
export function normalizePath(path: string): string {
  return path.includes('%')
    ? path.replace(ENCODED_UNRESERVED, (m) => String.fromCharCode(Number.parseInt(m.slice(1), 16)))
    : path;
}

export function compilePathPattern(source: string): PathPattern {
  const data = parse(source, { encodePath });
  const { regexp, keys } = pathToRegexp(data, { sensitive: true, end: true, trailing: true });
  let staticChars = 0;
  for (const t of data.tokens) if (t.type === 'text') staticChars += t.value.length;
  const lead = data.tokens[0];
  let firstSegment: string | undefined;
  let literalSegments = 0;
  if (lead?.type === 'text') {
    // "/users/" before ":id" holds one whole segment; "/users" before ":id" holds none.
    const pieces = lead.value.split('/').slice(1);
    literalSegments = data.tokens.length === 1 ? pieces.length : pieces.length - 1;
    if (literalSegments > 0) firstSegment = pieces[0];
  }
  return { source, regexp, keys, literalSegments, staticChars, firstSegment };
}
