/**
 * The route matcher. Built once per config; a lookup costs a few map probes whatever the
 * number of routes (exact paths and prefixes are hashed, patterns are bucketed by their first
 * literal segment), so 10,000 routes match about as fast as 10.
 *
 * Precedence (Gateway API HTTPRoute, written down in docs/config.md):
 *   1. hostname: exact > longest "*." wildcard > routes without hostnames;
 *   2. path: exact; then whichever of the best pattern and the longest prefix has more whole
 *      literal segments before its first parameter (a tie goes to the pattern);
 *   3. a method condition; 4. more header conditions; 5. more query conditions;
 *   6. declaration order (files by name, then position in the file).
 */
import type { MatchSpec, ValueMatchSpec } from '../config/schema.ts';
import { compilePathPattern, encodePath, type PathPattern } from '../core/path.ts';
import { firstSegmentOf, matchPattern, normalizePrefix, segmentCount, truncateSegments } from './path.ts';

export interface ValueMatcher {
  name: string;
  test(value: string | null): boolean;
}

export interface CompiledMatch {
  kind: 'exact' | 'pattern' | 'prefix';
  /** Exact path, or the normalized prefix. */
  path: string;
  pattern?: PathPattern;
  methods?: ReadonlySet<string>;
  headers: readonly ValueMatcher[];
  query: readonly ValueMatcher[];
  order: number;
}

export interface RouteMatch<R> {
  route: R;
  match: CompiledMatch;
  /** Pattern parameters, when the path matched a pattern. */
  params?: Record<string, string>;
}

export interface RouterEntry<R> {
  route: R;
  hostnames?: readonly string[];
  matches?: readonly MatchSpec[];
}

export interface RequestFacts {
  host: string;
  path: string;
  method: string;
  headers: Headers;
  url: URL;
}

type Candidate<R> = { route: R; match: CompiledMatch };

function valueMatcher(name: string, spec: ValueMatchSpec): ValueMatcher {
  if (typeof spec === 'string') return { name, test: (v) => v === spec };
  // Anchored: a regex must match the whole value, as in Envoy's safe_regex.
  const re = new RegExp(`^(?:${spec.regex})$`);
  return { name, test: (v) => v !== null && re.test(v) };
}

export function compileMatch(spec: MatchSpec, order: number): CompiledMatch {
  const headers = Object.entries(spec.headers ?? {}).map(([n, v]) => valueMatcher(n.toLowerCase(), v));
  const query = Object.entries(spec.query ?? {}).map(([n, v]) => valueMatcher(n, v));
  const methods =
    spec.method === undefined ? undefined : new Set(Array.isArray(spec.method) ? spec.method : [spec.method]);
  const base = { headers, query, order, ...(methods ? { methods } : {}) };
  const p = spec.path;
  if (p?.exact !== undefined) return { kind: 'exact', path: encodePath(p.exact), ...base };
  if (p?.pattern !== undefined)
    return { kind: 'pattern', path: p.pattern, pattern: compilePathPattern(p.pattern), ...base };
  return { kind: 'prefix', path: normalizePrefix(encodePath(p?.prefix ?? '/')), ...base };
}

/** Tie-breakers after the path: method, header count, query count, declaration order. */
function compareConditions(a: CompiledMatch, b: CompiledMatch): number {
  return (
    Number(b.methods !== undefined) - Number(a.methods !== undefined) ||
    b.headers.length - a.headers.length ||
    b.query.length - a.query.length ||
    a.order - b.order
  );
}

function comparePatterns(a: CompiledMatch, b: CompiledMatch): number {
  const pa = a.pattern!;
  const pb = b.pattern!;
  return (
    pb.literalSegments - pa.literalSegments ||
    pb.staticChars - pa.staticChars ||
    pa.keys.length - pb.keys.length ||
    compareConditions(a, b)
  );
}

function conditionsHold(m: CompiledMatch, req: RequestFacts): boolean {
  if (m.methods && !m.methods.has(req.method)) return false;
  for (const h of m.headers) if (!h.test(req.headers.get(h.name))) return false;
  if (m.query.length > 0) {
    const q = req.url.searchParams;
    for (const v of m.query) if (!v.test(q.get(v.name))) return false;
  }
  return true;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** All routes that apply to one hostname key. */
class HostTable<R> {
  readonly exact = new Map<string, Candidate<R>[]>();
  readonly prefix = new Map<string, Candidate<R>[]>();
  readonly patternsBySegment = new Map<string, Candidate<R>[]>();
  readonly patternsOther: Candidate<R>[] = [];
  /** Segments of the longest prefix here: a lookup never tries a longer one. */
  #maxPrefixSegments = 0;

  add(c: Candidate<R>): void {
    const m = c.match;
    if (m.kind === 'exact') push(this.exact, m.path, c);
    else if (m.kind === 'prefix') {
      push(this.prefix, m.path, c);
      this.#maxPrefixSegments = Math.max(this.#maxPrefixSegments, segmentCount(m.path));
    } else if (m.pattern!.firstSegment !== undefined) push(this.patternsBySegment, m.pattern!.firstSegment, c);
    else this.patternsOther.push(c);
  }

  seal(): void {
    for (const list of this.exact.values()) list.sort((a, b) => compareConditions(a.match, b.match));
    for (const list of this.prefix.values()) list.sort((a, b) => compareConditions(a.match, b.match));
    for (const list of this.patternsBySegment.values()) list.sort((a, b) => comparePatterns(a.match, b.match));
    this.patternsOther.sort((a, b) => comparePatterns(a.match, b.match));
  }

  find(req: RequestFacts): RouteMatch<R> | undefined {
    const { path } = req;
    const exact = this.exact.get(path);
    if (exact) for (const c of exact) if (conditionsHold(c.match, req)) return c;

    const byPattern = this.#firstPattern(this.patternsBySegment.get(firstSegmentOf(path)), req);
    const other = this.#firstPattern(this.patternsOther, req);
    const pattern =
      byPattern && other
        ? comparePatterns(byPattern.match, other.match) <= 0
          ? byPattern
          : other
        : (byPattern ?? other);
    const prefix = this.#longestPrefix(req);
    if (pattern && prefix)
      return pattern.match.pattern!.literalSegments >= segmentCount(prefix.match.path) ? pattern : prefix;
    return pattern ?? prefix;
  }

  #longestPrefix(req: RequestFacts): Candidate<R> | undefined {
    if (this.prefix.size === 0) return undefined;
    // Start at the longest prefix this table has: the work is linear in the path, whatever its length.
    let p = truncateSegments(normalizePrefix(req.path), this.#maxPrefixSegments);
    for (;;) {
      const list = this.prefix.get(p);
      if (list) for (const c of list) if (conditionsHold(c.match, req)) return c;
      if (p === '/') return undefined;
      const cut = p.lastIndexOf('/');
      p = cut <= 0 ? '/' : p.slice(0, cut);
    }
  }

  #firstPattern(list: Candidate<R>[] | undefined, req: RequestFacts): RouteMatch<R> | undefined {
    if (!list) return undefined;
    for (const c of list) {
      const params = matchPattern(c.match.pattern!, req.path);
      if (params && conditionsHold(c.match, req)) return { ...c, params };
    }
    return undefined;
  }
}

export class Router<R> {
  readonly #exactHosts = new Map<string, HostTable<R>>();
  /** Keyed by the suffix after "*", e.g. ".example.com". */
  readonly #wildcardHosts = new Map<string, HostTable<R>>();
  readonly #anyHost = new HostTable<R>();
  readonly size: number;

  constructor(entries: ReadonlyArray<RouterEntry<R>>) {
    let order = 0;
    for (const e of entries) {
      const matches = e.matches && e.matches.length > 0 ? e.matches : [{}];
      for (const spec of matches) {
        const c: Candidate<R> = { route: e.route, match: compileMatch(spec, order++) };
        if (!e.hostnames) this.#anyHost.add(c);
        for (const h of e.hostnames ?? []) {
          const [map, key] = h.startsWith('*.') ? [this.#wildcardHosts, h.slice(1)] : [this.#exactHosts, h];
          let table = map.get(key);
          if (!table) map.set(key, (table = new HostTable<R>()));
          table.add(c);
        }
      }
    }
    for (const t of this.#exactHosts.values()) t.seal();
    for (const t of this.#wildcardHosts.values()) t.seal();
    this.#anyHost.seal();
    this.size = entries.length;
  }

  find(req: RequestFacts): RouteMatch<R> | undefined {
    // "api.example.com." (fully qualified) is the same host as "api.example.com".
    const host = req.host.endsWith('.') ? req.host.slice(0, -1) : req.host;
    const exact = this.#exactHosts.get(host);
    if (exact) {
      const hit = exact.find(req);
      if (hit) return hit;
    }
    if (this.#wildcardHosts.size > 0) {
      // Longest suffix first: for a.b.example.com try .b.example.com, then .example.com, ...
      for (let i = host.indexOf('.'); i >= 0; i = host.indexOf('.', i + 1)) {
        const hit = this.#wildcardHosts.get(host.slice(i))?.find(req);
        if (hit) return hit;
      }
    }
    return this.#anyHost.find(req);
  }
}
