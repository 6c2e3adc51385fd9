/**
 * Turns routes files (YAML text) into one validated MeshConfig, or into a list of errors that
 * each name the file, line, column and field. Pure: no file system, so the same code runs in the
 * CLI, the build and the gateway's control plane, and they can never disagree.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { defaultEndpointName } from '../core/endpoint.ts';
import { errorText } from '../core/log.ts';
import { compilePathPattern } from '../core/path.ts';
import { refusedAddress } from './addresses.ts';
import {
  Config,
  MeshFile,
  SECTIONS,
  type MeshConfig,
  type MeshFileSpec,
  type SectionName,
  type SectionRule,
} from './schema.ts';

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
  /** The file as written (before defaults): what it actually sets. */
  data: unknown;
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

export interface ValidateOptions {
  /** Local development (`npm run dev`): URL backends on this machine are allowed. */
  dev?: boolean;
}

/** Validates and merges routes files given in declaration order. */
export function validateSources(sources: readonly ConfigSource[], options: ValidateOptions = {}): ValidationResult {
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
  const config = mergeAndCheck(parsed, errors, options);
  return config === undefined ? { ok: false, errors } : { ok: true, config };
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
  let data: unknown;
  try {
    // Aliases expand when the document is turned into data: bounded, so a "billion laughs"
    // document is an error, not a hung control plane.
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    errors.push({ file: source.name, line: 1, column: 1, field: '', message: `YAML: ${firstLine(errorText(e))}` });
    return undefined;
  }
  const result = MeshFile.safeParse(data);
  if (!result.success) {
    for (const issue of relevantIssues(flattenUnions(result.error.issues)))
      errors.push(...describeZodIssue(source, doc, lines, issue, data));
    return undefined;
  }
  return { source, doc, lines, data, spec: result.data };
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
    return flattenUnions(chosen[0]!.map((i) => ({ ...i, path: [...issue.path, ...i.path] })));
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
  let offset = doc.contents?.range?.[0] ?? 0;
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
      if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default' || def.type === 'prefault')
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

/**
 * Combines the files section by section, as SECTIONS says. A field counts as given by a file
 * only if the file wrote it: defaults the parser filled in never collide across files.
 */
function mergeSections(files: readonly ParsedFile[], err: ErrorAt): Record<string, unknown> {
  const merged: Record<string, unknown> = {};
  // Where each named thing was first given, for "already defined in <file:line:col>".
  const origin = new Map<string, string>();
  const first = (f: ParsedFile, path: PathSeg[], label: string, message: (seen: string) => string): boolean => {
    const seen = origin.get(label);
    if (seen) {
      err(f, path, message(seen), true);
      return false;
    }
    origin.set(label, posString(f, path, true));
    return true;
  };
  const byName = (f: ParsedFile, path: PathSeg[], what: string, given: object, into: Record<string, unknown>) => {
    for (const [name, value] of Object.entries(given)) {
      if (
        first(
          f,
          [...path, name],
          `${path.join('.')}.${name}`,
          (seen) => `${what} "${name}" is already defined in ${seen}`,
        )
      )
        into[name] = value;
    }
  };
  for (const [key, rule] of Object.entries(SECTIONS) as Array<[SectionName, SectionRule]>) {
    for (const f of files) {
      const raw = (f.data as Record<string, unknown>)[key];
      const value = f.spec[key] as unknown;
      if (raw === undefined || value === undefined) continue;
      if (rule.merge === 'concat') merged[key] = [...((merged[key] as unknown[]) ?? []), ...(value as unknown[])];
      else if (rule.merge === 'byName')
        byName(f, [key], rule.what, value as object, (merged[key] ??= {}) as Record<string, unknown>);
      else if (rule.merge === 'once') {
        if (first(f, [key], key, (seen) => `${key} is already set in ${seen}`)) merged[key] = value;
      } else {
        const into = (merged[key] ??= {}) as Record<string, unknown>;
        for (const field of Object.keys(raw as object)) {
          const v = (value as Record<string, unknown>)[field];
          const what = rule.byName[field];
          if (what !== undefined)
            byName(f, [key, field], what, v as object, (into[field] ??= {}) as Record<string, unknown>);
          else if (first(f, [key, field], `${key}.${field}`, (seen) => `${key}.${field} is already set in ${seen}`))
            into[field] = v;
        }
      }
    }
  }
  return merged;
}

type ErrorAt = (f: ParsedFile, path: PathSeg[], message: string, wantKey?: boolean) => void;

/** Merges files and checks what a single file cannot: uniqueness and references. */
function mergeAndCheck(
  files: readonly ParsedFile[],
  errors: ConfigIssue[],
  options: ValidateOptions,
): MeshConfig | undefined {
  const routeOrigin = new Map<string, string>();
  const err: ErrorAt = (f, path, message, wantKey = false) =>
    errors.push(at(f.source, f.doc, f.lines, path, wantKey, message));
  const partial = mergeSections(files, err);
  if (errors.length > 0) return undefined;
  // Every section and every default, from the one place defaults are written: the schema.
  const parsed = Config.safeParse(partial);
  if (!parsed.success) throw new Error(`merged config failed its own schema: ${parsed.error.message}`);
  const config = parsed.data;
  const { services, rateLimits, auth } = config;

  const addresses = {
    allowPrivate: config.network.allowPrivateBackends,
    allowLoopback: config.network.allowLoopbackBackends || options.dev === true,
  };
  for (const f of files) {
    for (const [name, issuer] of Object.entries(f.spec.auth?.issuers ?? {})) {
      // The gateway fetches it: never a metadata service or link-local address.
      if (issuer.jwksUri === undefined) continue;
      const why = refusedAddress(new URL(issuer.jwksUri), { allowPrivate: true, allowLoopback: true });
      if (why) err(f, ['auth', 'issuers', name, 'jwksUri'], why);
    }
    for (const [name, svc] of Object.entries(f.spec.services ?? {})) {
      svc.backends.forEach((b, i) => {
        const why = b.url === undefined ? undefined : refusedAddress(new URL(b.url), addresses);
        if (why) err(f, ['services', name, 'backends', i, 'url'], why);
      });
      const endpoints = new Map<string, number>();
      svc.backends.forEach((b, i) => {
        const here: PathSeg[] = ['services', name, 'backends', i];
        const id = `${b.version ?? ''}/${b.name ?? defaultEndpointName(b)}`;
        const twin = endpoints.get(id);
        if (twin !== undefined)
          err(
            f,
            b.name !== undefined ? [...here, 'name'] : here,
            `backends[${twin}] and backends[${i}] are the same endpoint "${b.name ?? defaultEndpointName(b)}"${b.version ? ` of version "${b.version}"` : ''}; give one a distinct "name"`,
          );
        endpoints.set(id, i);
      });
    }
  }

  const checkLimits = (f: ParsedFile, path: PathSeg[], names: readonly string[] | undefined, atGateway: boolean) => {
    (names ?? []).forEach((name, i) => {
      const policy = rateLimits[name];
      if (!policy) {
        const hint = suggest(name, Object.keys(rateLimits));
        err(f, [...path, i], `unknown rate limit "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
      } else if (
        atGateway &&
        (policy.key.some((k) => k.split('??').some((s) => s.trim() === 'caller')) || policy.callers)
      ) {
        err(
          f,
          [...path, i],
          `rate limit "${name}" uses the caller ("caller" key or "callers"), which only exists for calls between services (policy.rateLimits)`,
        );
      }
    });
  };
  const issuerByIss = new Map<string, string>();
  for (const f of files) {
    for (const [name, issuer] of Object.entries(f.spec.auth?.issuers ?? {})) {
      const sameIss = issuerByIss.get(issuer.issuer);
      if (sameIss)
        err(
          f,
          ['auth', 'issuers', name, 'issuer'],
          `issuer URL "${issuer.issuer}" is already used by ${sameIss}; tokens are matched to issuers by "iss"`,
        );
      else issuerByIss.set(issuer.issuer, posString(f, ['auth', 'issuers', name], true));
    }
  }

  for (const f of files) {
    (f.spec.admin?.issuers ?? []).forEach((name, i) => {
      const issuer = auth.issuers[name];
      if (!issuer)
        err(f, ['admin', 'issuers', i], `unknown issuer "${name}" (admin tokens are checked against auth.issuers)`);
      else if (issuer.audiences.includes(config.admin.audience))
        err(
          f,
          ['admin', 'issuers', i],
          `issuer "${name}" accepts the admin audience "${config.admin.audience}" for user tokens: admin tokens would double as user tokens (set admin.audience to one the issuer's audiences do not have)`,
        );
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
        : route.service !== undefined
          ? [{ service: route.service, version: route.version, path: here }]
          : []; // a redirect route sends nothing to a service
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

      if (route.auth && route.auth.mode !== 'off') {
        const known = Object.keys(auth.issuers);
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
    });
  }
  return errors.length > 0 ? undefined : config;
}

function posString(f: ParsedFile, path: PathSeg[], wantKey: boolean): string {
  const pos = f.lines.linePos(locate(f.doc, path, wantKey));
  return `${f.source.name}:${pos.line}:${pos.col}`;
}

/**
 * Where a field is written in a set of routes files (the first file that has it), for an error
 * found after validation (e.g. by the control plane) that should still point at its place.
 */
export function positionOf(
  sources: readonly ConfigSource[],
  path: readonly PathSeg[],
): Pick<ConfigIssue, 'file' | 'line' | 'column'> {
  for (const source of sources) {
    const lines = new LineCounter();
    const doc = parseDocument(source.text, { lineCounter: lines });
    if (doc.hasIn(path)) {
      const pos = lines.linePos(locate(doc, path, false));
      return { file: source.name, line: pos.line, column: pos.col };
    }
  }
  return { file: sources[0]?.name ?? '(routes)', line: 1, column: 1 };
}
