/**
 * Turns routes files (YAML text) into one validated MeshConfig, or into a list of errors that
 * each name the file, line, column and field. Pure: no file system, so the same code runs in the
 * CLI, the build and the gateway's control plane, and they can never disagree.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { compilePathPattern } from '../router/path.ts';
import { MeshFile, type MeshConfig, type MeshFileSpec, type RouteSpec, type ServiceSpec } from './schema.ts';

export interface ConfigSource {
  /** Shown in errors; usually the path relative to the working directory. */
  name: string;
  text: string;
}

export interface ConfigIssue {
  file: string;
  line: number;
  column: number;
  /** Dotted path of the offending field, e.g. routes[0].matches[0].path. */
  field: string;
  message: string;
}

export type ValidationResult = { ok: true; config: MeshConfig } | { ok: false; errors: ConfigIssue[] };

type PathSeg = string | number;

interface ParsedFile {
  source: ConfigSource;
  doc: Document;
  lines: LineCounter;
  spec: MeshFileSpec;
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.field ? `${i.field}: ` : ''}${i.message}`;
}

export function fieldPath(path: readonly PathSeg[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

/** Validates and merges routes files given in declaration order. */
export function validateSources(sources: readonly ConfigSource[]): ValidationResult {
  const errors: ConfigIssue[] = [];
  const parsed: ParsedFile[] = [];
  if (sources.length === 0) {
    return {
      ok: false,
      errors: [{ file: '(routes)', line: 1, column: 1, field: '', message: 'no routes files (*.yaml, *.yml) found' }],
    };
  }
  for (const source of sources) {
    const file = parseFile(source, errors);
    if (file) parsed.push(file);
  }
  if (errors.length > 0) return { ok: false, errors };
  const config = mergeAndCheck(parsed, errors);
  return errors.length > 0 ? { ok: false, errors } : { ok: true, config };
}

function parseFile(source: ConfigSource, errors: ConfigIssue[]): ParsedFile | undefined {
  const lines = new LineCounter();
  const doc = parseDocument(source.text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
      errors.push({
        file: source.name,
        line: pos.line,
        column: pos.col,
        field: '',
        message: `YAML: ${firstLine(e.message)}`,
      });
    }
    return undefined;
  }
  const data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  const result = MeshFile.safeParse(data);
  if (!result.success) {
    for (const issue of relevantIssues(flattenUnions(result.error.issues)))
      errors.push(...describeZodIssue(source, doc, lines, issue, data));
    return undefined;
  }
  return { source, doc, lines, spec: result.data };
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0] ?? s;
}

type Issue = z.core.$ZodIssue;

/**
 * A union error ("string or { regex }") says little when the input clearly chose a branch (it
 * is an object): report that branch's own issues instead, e.g. the misspelt key inside it.
 */
function flattenUnions(issues: readonly Issue[]): Issue[] {
  return issues.flatMap((issue): Issue[] => {
    if (issue.code !== 'invalid_union') return [issue];
    const chosen = issue.errors.filter(
      (branch) => !branch.some((i) => i.code === 'invalid_type' && i.path.length === 0),
    );
    if (chosen.length !== 1) return [issue];
    return flattenUnions(chosen[0]!.map((i) => ({ ...i, path: [...issue.path, ...i.path] }) as Issue));
  });
}

/**
 * Drops follow-on errors of a misspelt key: the object-level check ("needs exactly one of
 * binding or url") and "is required" for the field the typo was meant to be.
 */
function relevantIssues(issues: readonly Issue[]): Issue[] {
  const typoAt = new Map<string, string[]>();
  for (const i of issues) if (i.code === 'unrecognized_keys') typoAt.set(i.path.join('.'), i.keys);
  return issues.filter((i) => {
    const here = i.path.join('.');
    if (i.code === 'custom' && typoAt.has(here)) return false;
    if (i.code === 'invalid_type' && i.path.length > 0) {
      const parent = i.path.slice(0, -1).join('.');
      const field = String(i.path.at(-1));
      const typos = typoAt.get(parent);
      if (typos?.some((t) => suggest(t, [field]) === field)) return false;
    }
    return true;
  });
}

function valueAt(data: unknown, path: readonly PathSeg[]): unknown {
  let v = data;
  for (const seg of path) v = typeof v === 'object' && v !== null ? (v as Record<PathSeg, unknown>)[seg] : undefined;
  return v;
}

function describeZodIssue(
  source: ConfigSource,
  doc: Document,
  lines: LineCounter,
  issue: Issue,
  data: unknown,
): ConfigIssue[] {
  const path = issue.path.filter((s): s is PathSeg => typeof s !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const known = knownKeysAt(path);
      const hint = suggest(key, known);
      return at(
        source,
        doc,
        lines,
        [...path, key],
        true,
        `unknown field "${key}"${hint ? ` (did you mean "${hint}"?)` : known.length ? ` (expected one of: ${known.join(', ')})` : ''}`,
      );
    });
  }
  let message = issue.message;
  if (issue.code === 'invalid_type' && valueAt(data, path) === undefined) message = 'is required';
  if (issue.code === 'invalid_key')
    message = `key ${JSON.stringify(path.at(-1) ?? '')}: ${issue.issues[0]?.message ?? message}`;
  return [at(source, doc, lines, path, issue.code === 'invalid_key', message)];
}

function at(
  source: ConfigSource,
  doc: Document,
  lines: LineCounter,
  path: readonly PathSeg[],
  wantKey: boolean,
  message: string,
): ConfigIssue {
  const offset = locate(doc, path, wantKey);
  const pos = lines.linePos(offset);
  return {
    file: source.name,
    line: Math.max(pos.line, 1),
    column: Math.max(pos.col, 1),
    field: fieldPath(path),
    message,
  };
}

/** Source offset of the node at `path`, or of its nearest existing ancestor. */
function locate(doc: Document, path: readonly PathSeg[], wantKey: boolean): number {
  let node: unknown = doc.contents;
  let offset = (doc.contents as YamlNode | null)?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (!pair) return offset;
      const keyNode = pair.key as YamlNode | null;
      const valueNode = pair.value as YamlNode | null;
      if (last && wantKey && keyNode?.range) return keyNode.range[0];
      offset = valueNode?.range?.[0] ?? keyNode?.range?.[0] ?? offset;
      node = valueNode;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as YamlNode | undefined;
      if (!item) return offset;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      return offset;
    }
  }
  return offset;
}

/** The fields the schema allows at `path`, found by walking the zod schema itself. */
function knownKeysAt(path: readonly PathSeg[]): string[] {
  const objectAt = (schema: z.ZodType | undefined): z.ZodType | undefined => {
    let node = schema;
    for (;;) {
      const def = (node as { _zod?: { def: Record<string, unknown> & { type: string } } } | undefined)?._zod?.def;
      if (!def) return undefined;
      if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default')
        node = def.innerType as z.ZodType;
      else if (def.type === 'pipe') node = def.in as z.ZodType;
      else if (def.type === 'union') {
        // The object branch, if there is one (e.g. { regex } beside a plain string).
        node = (def.options as z.ZodType[]).find((o) => o._zod.def.type === 'object');
      } else return node;
    }
  };
  let node: z.ZodType | undefined = objectAt(MeshFile);
  for (const seg of path) {
    const def = node?._zod.def as (Record<string, unknown> & { type: string }) | undefined;
    if (!def) return [];
    if (def.type === 'object') node = (def.shape as Record<string, z.ZodType>)[String(seg)];
    else if (def.type === 'array') node = def.element as z.ZodType;
    else if (def.type === 'record') node = def.valueType as z.ZodType;
    else return [];
    node = objectAt(node);
  }
  const def = node?._zod.def as (Record<string, unknown> & { type: string }) | undefined;
  return def?.type === 'object' ? Object.keys(def.shape as object) : [];
}

/** The known key closest to a typo, if it is close enough to be what was meant. */
function suggest(typo: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(typo.toLowerCase(), k.toLowerCase());
    if (d < bestDist) [best, bestDist] = [k, d];
  }
  return best !== undefined && bestDist <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

/** Optimal string alignment distance: edits, with a swap of neighbours counting as one. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** Merges files and checks what a single file cannot: uniqueness and references. */
function mergeAndCheck(files: readonly ParsedFile[], errors: ConfigIssue[]): MeshConfig {
  const services: Record<string, ServiceSpec> = {};
  const serviceOrigin = new Map<string, string>();
  const routes: RouteSpec[] = [];
  const routeOrigin = new Map<string, string>();
  const err = (f: ParsedFile, path: PathSeg[], message: string, wantKey = false) =>
    errors.push(at(f.source, f.doc, f.lines, path, wantKey, message));

  for (const f of files) {
    for (const [name, svc] of Object.entries(f.spec.services ?? {})) {
      const seen = serviceOrigin.get(name);
      if (seen) err(f, ['services', name], `service "${name}" is already defined in ${seen}`, true);
      else {
        serviceOrigin.set(name, posString(f, ['services', name], true));
        services[name] = svc;
      }
      const versions = new Set<string>();
      svc.backends.forEach((b, i) => {
        if (b.version === undefined) return;
        if (versions.has(b.version))
          err(
            f,
            ['services', name, 'backends', i, 'version'],
            `version "${b.version}" appears twice in service "${name}"`,
          );
        versions.add(b.version);
      });
    }
  }

  // auth and identity: issuers merge by name; every other setting may be given in one file only.
  const auth: NonNullable<MeshConfig['auth']> = {};
  const issuerOrigin = new Map<string, string>();
  const settingOrigin = new Map<string, string>();
  let identity: MeshConfig['identity'];
  let rateLimits: MeshConfig['rateLimits'];
  let rateLimitStore: MeshConfig['rateLimitStore'];
  const singles: Pick<MeshConfig, 'registry' | 'admin'> = {};
  const checkLimits = (f: ParsedFile, path: PathSeg[], names: readonly string[] | undefined, atGateway: boolean) => {
    (names ?? []).forEach((name, i) => {
      const policy = rateLimits?.[name];
      if (!policy) {
        const hint = suggest(name, Object.keys(rateLimits ?? {}));
        err(f, [...path, i], `unknown rate limit "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
      } else if (atGateway && (policy.key?.includes('caller') || policy.callers)) {
        err(
          f,
          [...path, i],
          `rate limit "${name}" uses the caller ("caller" key or "callers"), which only exists for calls between services (policy.rateLimits)`,
        );
      }
    });
  };
  for (const f of files) {
    const a = f.spec.auth;
    for (const [name, issuer] of Object.entries(a?.issuers ?? {})) {
      const sameIss = issuerOrigin.get(`iss:${issuer.issuer}`);
      if (sameIss)
        err(
          f,
          ['auth', 'issuers', name, 'issuer'],
          `issuer URL "${issuer.issuer}" is already used by ${sameIss}; tokens are matched to issuers by "iss"`,
        );
      else issuerOrigin.set(`iss:${issuer.issuer}`, posString(f, ['auth', 'issuers', name], true));
      const seen = issuerOrigin.get(name);
      if (seen) err(f, ['auth', 'issuers', name], `issuer "${name}" is already defined in ${seen}`, true);
      else {
        issuerOrigin.set(name, posString(f, ['auth', 'issuers', name], true));
        (auth.issuers ??= {})[name] = issuer;
      }
    }
    // Settings given once across all files; a second definition names the first.
    const once = (path: PathSeg[], label: string, assign: () => void) => {
      const seen = settingOrigin.get(label);
      if (seen) err(f, path, `${label} is already set in ${seen}`, true);
      else {
        settingOrigin.set(label, posString(f, path, true));
        assign();
      }
    };
    for (const key of ['registry', 'admin'] as const) {
      if (f.spec[key] !== undefined) once([key], key, () => (singles[key] = f.spec[key] as never));
    }
    for (const key of ['token', 'claimHeaders', 'verifiedCache'] as const) {
      if (a?.[key] !== undefined)
        once(['auth', key], `auth.${key}`, () => ((auth as Record<string, unknown>)[key] = a[key]));
    }
    for (const [name, policy] of Object.entries(f.spec.rateLimits ?? {})) {
      once(['rateLimits', name], `rateLimits.${name}`, () => ((rateLimits ??= {})[name] = policy));
    }
    if (f.spec.rateLimitStore !== undefined)
      once(['rateLimitStore'], 'rateLimitStore', () => (rateLimitStore = f.spec.rateLimitStore));
    if (f.spec.identity !== undefined) once(['identity'], 'identity', () => (identity = f.spec.identity));
  }

  for (const f of files) {
    (f.spec.admin?.issuers ?? []).forEach((name, i) => {
      if (!auth.issuers?.[name])
        err(f, ['admin', 'issuers', i], `unknown issuer "${name}" (admin tokens are checked against auth.issuers)`);
    });
    for (const [name, policy] of Object.entries(f.spec.rateLimits ?? {})) {
      (policy.callers ?? []).forEach((caller, i) => {
        if (caller !== 'gateway' && !services[caller])
          err(f, ['rateLimits', name, 'callers', i], `unknown caller "${caller}": not "gateway" nor a service`);
      });
    }
    for (const [name, svc] of Object.entries(f.spec.services ?? {})) {
      checkLimits(f, ['services', name, 'policy', 'rateLimits'], svc.policy?.rateLimits, false);
      (svc.policy?.allowCallers ?? []).forEach((caller, i) => {
        if (caller !== 'gateway' && !services[caller]) {
          const hint = suggest(caller, ['gateway', ...Object.keys(services)]);
          err(
            f,
            ['services', name, 'policy', 'allowCallers', i],
            `unknown caller "${caller}": not "gateway" nor a service${hint ? ` (did you mean "${hint}"?)` : ''}`,
          );
        }
      });
    }
  }

  for (const f of files) {
    (f.spec.routes ?? []).forEach((route, i) => {
      const here: PathSeg[] = ['routes', i];
      const seen = routeOrigin.get(route.name);
      if (seen) err(f, [...here, 'name'], `route "${route.name}" is already defined at ${seen}`);
      else routeOrigin.set(route.name, posString(f, [...here, 'name'], false));

      const refs = route.backendRefs
        ? route.backendRefs.map((r, j) => ({ ...r, path: [...here, 'backendRefs', j] }))
        : [{ service: route.service!, version: route.version, path: here }];
      for (const ref of refs) {
        const svc = services[ref.service];
        if (!svc) {
          const known = Object.keys(services);
          const hint = suggest(ref.service, known);
          err(
            f,
            [...ref.path, 'service'],
            `unknown service "${ref.service}"${hint ? ` (did you mean "${hint}"?)` : ''}`,
          );
        } else if (ref.version !== undefined && !svc.backends.some((b) => b.version === ref.version)) {
          const versions = svc.backends.flatMap((b) => (b.version ? [b.version] : []));
          err(
            f,
            [...ref.path, 'version'],
            `service "${ref.service}" has no version "${ref.version}"${versions.length ? ` (has: ${versions.join(', ')})` : ''}`,
          );
        }
      }

      (route.matches ?? []).forEach((m, j) => {
        const mp: PathSeg[] = [...here, 'matches', j];
        const p = m.path;
        const kind = p && (p.exact !== undefined ? 'exact' : p.prefix !== undefined ? 'prefix' : 'pattern');
        const value = p?.exact ?? p?.prefix ?? p?.pattern;
        if (kind && value !== undefined && /^\/_mesh(\/|$)/.test(value)) {
          err(f, [...mp, 'path', kind], "paths under /_mesh/ are reserved for meshwork's own endpoints");
        }
        if (m.path?.pattern !== undefined) {
          try {
            compilePathPattern(m.path.pattern);
          } catch (e) {
            err(f, [...mp, 'path', 'pattern'], `invalid pattern: ${(e as Error).message}`);
          }
        }
        for (const kind of ['headers', 'query'] as const) {
          for (const [name, v] of Object.entries(m[kind] ?? {})) {
            if (typeof v === 'object') {
              try {
                new RegExp(v.regex);
              } catch (e) {
                err(f, [...mp, kind, name, 'regex'], `invalid regular expression: ${(e as Error).message}`);
              }
            }
          }
        }
      });

      if (route.auth && (route.auth.mode ?? 'required') !== 'off') {
        const known = Object.keys(auth.issuers ?? {});
        if (known.length === 0)
          err(f, [...here, 'auth'], 'route requires authentication but no auth.issuers are configured');
        (route.auth.issuers ?? []).forEach((name, j) => {
          if (!known.includes(name)) {
            const hint = suggest(name, known);
            err(
              f,
              [...here, 'auth', 'issuers', j],
              `unknown issuer "${name}"${hint ? ` (did you mean "${hint}"?)` : known.length ? ` (known: ${known.join(', ')})` : ''}`,
            );
          }
        });
      }

      checkLimits(f, [...here, 'rateLimits'], route.rateLimits, true);

      if (route.rewrite?.pathPrefix !== undefined) {
        const matches = route.matches ?? [{}];
        const bad = matches.findIndex((m) => m.path !== undefined && m.path.prefix === undefined);
        if (bad >= 0)
          err(
            f,
            [...here, 'rewrite', 'pathPrefix'],
            `"pathPrefix" rewrites need prefix path matches (matches[${bad}] is not a prefix match)`,
          );
      }
      routes.push(route);
    });
  }
  return {
    services,
    routes,
    ...(Object.keys(auth).length ? { auth } : {}),
    ...(identity ? { identity } : {}),
    ...(rateLimits ? { rateLimits } : {}),
    ...(rateLimitStore ? { rateLimitStore } : {}),
    ...singles,
  };
}

function posString(f: ParsedFile, path: PathSeg[], wantKey: boolean): string {
  const pos = f.lines.linePos(locate(f.doc, path, wantKey));
  return `${f.source.name}:${pos.line}:${pos.col}`;
}
