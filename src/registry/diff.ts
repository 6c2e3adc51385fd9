/** What an apply would change: a unified diff of the routes files and a summary by name. */
import { createTwoFilesPatch } from 'diff';
import type { MeshBundle, MeshConfig } from '../config/schema.ts';

export interface ConfigDiff {
  from: string;
  to: string;
  /** Unified diff of the routes files (empty when the texts are the same). */
  patch: string;
  summary: {
    routes: { added: string[]; removed: string[]; changed: string[] };
    services: { added: string[]; removed: string[]; changed: string[] };
    /** Other top-level sections (auth, rateLimits, ...) whose content differs. */
    sections: string[];
  };
}

function byName<T>(before: Record<string, T>, after: Record<string, T>) {
  const added = Object.keys(after).filter((k) => !(k in before));
  const removed = Object.keys(before).filter((k) => !(k in after));
  const changed = Object.keys(after).filter(
    (k) => k in before && JSON.stringify(before[k]) !== JSON.stringify(after[k]),
  );
  return { added, removed, changed };
}

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
  const routes = (c: MeshConfig) => Object.fromEntries(c.routes.map((r) => [r.name, r]));
  const sections = (['auth', 'identity', 'rateLimits', 'rateLimitStore', 'registry', 'admin'] as const).filter(
    (k) => JSON.stringify(from.config[k]) !== JSON.stringify(to.config[k]),
  );
  return {
    from: from.version,
    to: to.version,
    patch,
    summary: {
      routes: byName(routes(from.config), routes(to.config)),
      services: byName(from.config.services, to.config.services),
      sections,
    },
  };
}
