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

/** Longest request path the gateway routes (bytes of the percent-encoded path); longer is 414. */
export const MAX_PATH_LENGTH = 8192;
/** Most path segments the gateway routes; more is 414. */
export const MAX_PATH_SEGMENTS = 256;

export type Canonical<T> = { ok: true; value: T } | { ok: false; status: 400 | 414; message: string };

/** Encoded "/" and "\\": a backend that decodes them would see segments the router did not. */
const ENCODED_SEPARATOR = /%(?:2[Ff]|5[Cc])/;
/** Encoded NUL and other controls: nothing legitimate needs them in a path. */
const ENCODED_CONTROL = /%(?:0[0-9A-Fa-f]|1[0-9A-Fa-f]|7[Ff])/;

/**
 * The one form of a request path that routes match and backends receive. The URL parser has
 * already resolved "." and ".." segments; here encoded unreserved characters are decoded (see
 * normalizePath) and runs of "/" are merged into one, as nginx does by default, so
 * "/probe//admin" is "/probe/admin" for the router and the backend alike. Paths that cannot be
 * made unambiguous are refused: an encoded "/" or "\\" or control character (400), and paths
 * beyond MAX_PATH_LENGTH or MAX_PATH_SEGMENTS (414), which also bounds the cost of a lookup.
 */
export function canonicalPath(pathname: string): Canonical<string> {
  if (pathname.length > MAX_PATH_LENGTH) {
    return { ok: false, status: 414, message: `request path longer than ${MAX_PATH_LENGTH} bytes` };
  }
  if (pathname.includes('%') && (ENCODED_SEPARATOR.test(pathname) || ENCODED_CONTROL.test(pathname))) {
    return { ok: false, status: 400, message: 'request path has an encoded "/", "\\" or control character' };
  }
  let path = normalizePath(pathname);
  if (path.includes('//')) path = path.replace(/\/{2,}/g, '/');
  let segments = 0;
  for (let i = 0; i < path.length; i++) {
    if (path.charCodeAt(i) === 47 && ++segments > MAX_PATH_SEGMENTS) {
      return { ok: false, status: 414, message: `request path has more than ${MAX_PATH_SEGMENTS} segments` };
    }
  }
  return { ok: true, value: path };
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * The request's host as routes match it: "api.example.com." (fully qualified) is
 * "api.example.com"; a host with an empty label ("a..b", "host..", ".host") is refused (400):
 * it is no name a route can be meant for, and trimming it differently than a backend would is
 * how hostname-scoped routes are escaped. IP literals are taken as they are.
 */
export function canonicalHost(hostname: string): Canonical<string> {
  if (hostname.startsWith('[') || /^[0-9.]+$/.test(hostname)) return { ok: true, value: hostname };
  const host = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  if (host.length === 0 || host.length > 253 || !host.split('.').every((l) => LABEL.test(l))) {
    return { ok: false, status: 400, message: 'the request host is not a valid host name' };
  }
  return { ok: true, value: host };
}
