/**
 * How the registry's state is stored in its Durable Object, so that no single value can outgrow
 * what storage takes (2 MB per value) and nothing in memory runs ahead of what is stored:
 *
 *   meta              revision, epoch, head, heads
 *   audit             the audit log (bounded by count)
 *   inst:<key>        one endpoint record each
 *   cfgidx            the applied configs' index (bounded by count and bytes: history.ts)
 *   cfg:<rev>:<n>     a config's bundle as JSON, in chunks of CHUNK characters
 *
 * A change is made on a draft (state.ts draftOf), written in one transaction with only the keys
 * that changed, and takes the place of the state in force only once the write succeeded.
 * State written by an earlier meshwork as one `state` value is read and rewritten in this form.
 */
import type { MeshBundle } from '../../config/schema.ts';
import type { AuditEntry, ConfigEntry, Instance } from '../../registry/types.ts';
import { allWrites, changes, chunkKeys, type Meta } from './layout.ts';
import { fromLegacy, sinceLoad, upgradeInstances, type LegacyState, type RegistryState } from './state.ts';

export async function loadBundle(storage: DurableObjectStorage, entry: ConfigEntry): Promise<MeshBundle> {
  const parts = await storage.get<string>(chunkKeys(entry));
  const text = chunkKeys(entry)
    .map((k) => {
      const part = parts.get(k);
      if (part === undefined) throw new Error(`config revision ${entry.revision} is missing from storage (${k})`);
      return part;
    })
    .join('');
  return JSON.parse(text) as MeshBundle;
}

export async function store(storage: DurableObjectStorage, prev: RegistryState, next: RegistryState): Promise<void> {
  const { put, del } = changes(prev, next);
  const keys = Object.keys(put);
  if (keys.length === 0 && del.length === 0) return;
  await storage.transaction(async (txn) => {
    // put() takes at most 128 keys at once; one transaction still makes it all or nothing.
    for (let i = 0; i < keys.length; i += 128) {
      const batch: Record<string, unknown> = {};
      for (const k of keys.slice(i, i + 128)) batch[k] = put[k];
      await txn.put(batch);
    }
    for (let i = 0; i < del.length; i += 128) await txn.delete(del.slice(i, i + 128));
  });
}

/**
 * The stored state, with the bundle in force loaded. `rewritten` says whether it had to be
 * brought to today's form (legacy layout, or records without endpoint keys), which the registry
 * then publishes at once.
 */
export async function load(
  storage: DurableObjectStorage,
  fresh: RegistryState,
): Promise<{ state: RegistryState; rewritten: boolean }> {
  const legacy = await storage.get<LegacyState>('state');
  if (legacy) {
    const state = fromLegacy(legacy);
    await storage.transaction(async (txn) => {
      const writes = allWrites(state);
      const keys = Object.keys(writes);
      for (let i = 0; i < keys.length; i += 128) {
        const batch: Record<string, unknown> = {};
        for (const k of keys.slice(i, i + 128)) batch[k] = writes[k];
        await txn.put(batch);
      }
      await txn.delete('state');
    });
    // Only the bundle in force stays in memory.
    for (const rev of [...state.bundles.keys()]) if (rev !== state.head) state.bundles.delete(rev);
    return { state, rewritten: true };
  }
  const meta = await storage.get<Meta>('meta');
  if (!meta) return { state: fresh, rewritten: false };
  const [audit, configs, records] = await Promise.all([
    storage.get<AuditEntry[]>('audit'),
    storage.get<ConfigEntry[]>('cfgidx'),
    storage.list<Instance>({ prefix: 'inst:' }),
  ]);
  const { instances, upgraded } = upgradeInstances(Object.fromEntries([...records.values()].map((i) => [i.id, i])));
  const state: RegistryState = {
    ...fresh,
    ...meta,
    configSince: meta.configSince ?? sinceLoad(meta.revision, Date.now()),
    audit: audit ?? [],
    configs: configs ?? [],
    instances,
    bundles: new Map(),
  };
  const head = state.configs.find((c) => c.revision === state.head);
  if (head) state.bundles.set(head.revision, await loadBundle(storage, head));
  if (upgraded) {
    // Records keyed the old way: stored under their new keys, the old ones removed.
    await storage.transaction(async (txn) => {
      await txn.delete([...records.keys()]);
      for (const [id, inst] of Object.entries(instances)) await txn.put(`inst:${id}`, inst);
    });
  }
  return { state, rewritten: upgraded };
}
