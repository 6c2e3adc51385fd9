/** What an apply would change: a unified diff of the routes files and a summary by section. */
import { createTwoFilesPatch } from 'diff';
import { SECTIONS, type MeshBundle, type MeshConfig, type SectionName } from './schema.ts';

export interface NamedChanges {
  added: string[];
  removed: string[];
  changed: string[];
}

export interface ConfigDiff {
  from: string;
  to: string;
  /** Unified diff of the routes files (empty when the texts are the same). */
  patch: string;
  summary: {
    routes: NamedChanges;
    services: NamedChanges;
    /** Named policies (rateLimits) added, removed or changed. */
    rateLimits: NamedChanges;
    /** Other top-level sections (auth, identity, registry, ...) whose content differs. */
    sections: string[];
  };
}

function byName<T>(before: Record<string, T>, after: Record<string, T>): NamedChanges {
  const added = Object.keys(after).filter((k) => !(k in before));
  const removed = Object.keys(before).filter((k) => !(k in after));
  const changed = Object.keys(after).filter(
    (k) => k in before && JSON.stringify(before[k]) !== JSON.stringify(after[k]),
  );
  return { added, removed, changed };
}

const routesByName = (c: MeshConfig) => Object.fromEntries(c.routes.map((r) => [r.name, r]));

export function diffBundles(from: MeshBundle, to: MeshBundle): ConfigDiff {
  const a = new Map((from.sources ?? []).map((s) => [s.name, s.text]));
  const b = new Map((to.sources ?? []).map((s) => [s.name, s.text]));
  const names = [...new Set([...a.keys(), ...b.keys()])].sort();
  const patch = names
    .filter((n) => a.get(n) !== b.get(n))
    .map((n) =>
      createTwoFilesPatch(
        a.has(n) ? `a/${n}` : '/dev/null',
        b.has(n) ? `b/${n}` : '/dev/null',
        a.get(n) ?? '',
        b.get(n) ?? '',
        `live ${from.version}`,
        `new ${to.version}`,
      ),
    )
    .join('');
  // Every section the schema knows is compared: one named in SECTIONS cannot be forgotten here.
  const itemized = new Set<SectionName>(['routes', 'services', 'rateLimits']);
  const sections = (Object.keys(SECTIONS) as SectionName[]).filter(
    (k) => !itemized.has(k) && JSON.stringify(from.config[k]) !== JSON.stringify(to.config[k]),
  );
  return {
    from: from.version,
    to: to.version,
    patch,
    summary: {
      routes: byName(routesByName(from.config), routesByName(to.config)),
      services: byName(from.config.services, to.config.services),
      rateLimits: byName(from.config.rateLimits, to.config.rateLimits),
      sections,
    },
  };
}
