/**
 * The registry's storage layout (which keys hold what; see storage.ts) and what a change writes:
 * pure functions, tested without a Durable Object.
 */
import type { ConfigEntry } from '../../registry/types.ts';
import type { RegistryState } from './state.ts';

/** Characters per stored chunk: at most 4 bytes each in UTF-8, well below the value limit. */
export const CHUNK = 256 * 1024;

export interface Meta {
  revision: number;
  epoch: string;
  head: number;
  heads: number[];
  /** Absent in state stored by an earlier meshwork. */
  configSince?: { after: number; at: number };
}

export const metaOf = (s: RegistryState): Meta => ({
  revision: s.revision,
  epoch: s.epoch,
  head: s.head,
  heads: s.heads,
  configSince: s.configSince,
});

export function chunksOf(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += CHUNK) out.push(text.slice(i, i + CHUNK));
  return out.length ? out : [''];
}

export const chunkCount = (entry: ConfigEntry) => Math.max(1, Math.ceil(entry.bytes / CHUNK));
export const chunkKeys = (entry: ConfigEntry) =>
  Array.from({ length: chunkCount(entry) }, (_, n) => `cfg:${entry.revision}:${n}`);

/** Every key of a state, for writing it whole (a migration). */
export function allWrites(s: RegistryState): Record<string, unknown> {
  const writes: Record<string, unknown> = { meta: metaOf(s), audit: s.audit, cfgidx: s.configs };
  for (const [id, inst] of Object.entries(s.instances)) writes[`inst:${id}`] = inst;
  for (const entry of s.configs) {
    const bundle = s.bundles.get(entry.revision);
    if (bundle) chunksOf(JSON.stringify(bundle)).forEach((c, n) => (writes[`cfg:${entry.revision}:${n}`] = c));
  }
  return writes;
}

/** What storing `next` over `prev` writes and deletes. */
export function changes(prev: RegistryState, next: RegistryState): { put: Record<string, unknown>; del: string[] } {
  const put: Record<string, unknown> = {};
  const del: string[] = [];
  if (JSON.stringify(metaOf(prev)) !== JSON.stringify(metaOf(next))) put.meta = metaOf(next);
  if (prev.audit.length !== next.audit.length || prev.audit.at(-1) !== next.audit.at(-1)) put.audit = next.audit;
  for (const [id, inst] of Object.entries(next.instances)) if (prev.instances[id] !== inst) put[`inst:${id}`] = inst;
  for (const id of Object.keys(prev.instances)) if (!(id in next.instances)) del.push(`inst:${id}`);
  const before = new Map(prev.configs.map((c) => [c.revision, c]));
  const after = new Map(next.configs.map((c) => [c.revision, c]));
  for (const entry of next.configs) {
    if (before.has(entry.revision)) continue;
    const bundle = next.bundles.get(entry.revision)!;
    chunksOf(JSON.stringify(bundle)).forEach((c, n) => (put[`cfg:${entry.revision}:${n}`] = c));
  }
  for (const entry of prev.configs) if (!after.has(entry.revision)) del.push(...chunkKeys(entry));
  if (before.size !== after.size || next.configs.some((c) => before.get(c.revision) !== c)) put.cfgidx = next.configs;
  return { put, del };
}
