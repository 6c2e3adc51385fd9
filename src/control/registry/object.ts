/**
 * The registry: the single, strongly consistent source of truth for the mesh's live state, one
 * Durable Object (idFromName("registry")) in the gateway worker. It holds endpoint records and
 * the applied routes config with its history, and publishes a snapshot to KV on every change.
 * Gateways and services route from that snapshot: nothing on the request path calls this object.
 *
 * An alarm expires records that stop heartbeating and probes health endpoints; both take an
 * endpoint out of rotation (and put it back when it recovers), visibly in status. The rules live
 * in instances.ts, history.ts, prober.ts and publisher.ts, storage in storage.ts; this class
 * orders them. Every change is made on a draft and takes effect only once it is stored.
 */
import { DurableObject } from 'cloudflare:workers';
import { kvOf, namespaceOf, type MeshBindings } from '../../core/bindings.ts';
import { errorText, logEvent } from '../../core/log.ts';
import { normalizeBundle } from '../../config/bundle.ts';
import { Registry, type MeshBundle } from '../../config/schema.ts';
import { bundledConfig } from '../../generated/bundle.ts';
import type { AuditEntry, ConfigEntry, Instance, InstanceInfo, Snapshot } from '../../registry/types.ts';
import { REGISTRY_NAME, type RegistryLatest } from '../../registry/types.ts';
import * as history from './history.ts';
import * as records from './instances.ts';
import { probe, targetOf, wakeUnregistered } from './prober.ts';
import { Publisher } from './publisher.ts';
import { draftOf, freshState, type RegistryState } from './state.ts';
import { load, loadBundle, store } from './storage.ts';

export interface RegistryStatus {
  revision: number;
  epoch: string;
  configRevision: number;
  configVersion: string;
  instances: Instance[];
  configs: ConfigEntry[];
  audit: AuditEntry[];
}

/** The registry object's stub, from the gateway's MESH_REGISTRY binding. */
export function registryOf(env: MeshBindings): DurableObjectStub<MeshRegistry> | undefined {
  const ns = namespaceOf<MeshRegistry>(env, 'MESH_REGISTRY');
  return ns ? ns.get(ns.idFromName(REGISTRY_NAME)) : undefined;
}

const normalized = new WeakMap<MeshBundle, MeshBundle>();

export class MeshRegistry extends DurableObject<MeshBindings> {
  #s: RegistryState = freshState();
  readonly #publisher: Publisher;
  /** Calls per method since this object started (tests check the request path makes none). */
  readonly calls: Record<string, number> = {};

  constructor(ctx: DurableObjectState, env: MeshBindings) {
    super(ctx, env);
    this.#publisher = new Publisher(
      () => kvOf(this.env),
      () => this.#snapshot(),
      this.env,
    );
    void ctx.blockConcurrencyWhile(async () => {
      const { state, rewritten } = await load(ctx.storage, freshState());
      this.#s = state;
      // Written by an earlier meshwork: published in today's form now, not at the next change.
      if (rewritten) {
        await this.#commit((s) => {
          s.revision++;
        });
        this.#publisher.schedule();
      }
    });
  }

  #count(method: string): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
  }

  /**
   * Makes a change: `change` edits a draft; the draft is stored (only what changed) and then
   * becomes the state. If storing fails, nothing changed, in memory either.
   */
  async #commit<T>(change: (draft: RegistryState) => T): Promise<T> {
    const draft = draftOf(this.#s);
    const result = change(draft);
    await store(this.ctx.storage, this.#s, draft);
    this.#s = draft;
    return result;
  }

  /** A change that alters routing: a new revision, stored, then published. */
  async #route<T>(change: (draft: RegistryState) => T, keep: (result: T) => boolean = () => true): Promise<T> {
    const result = await this.#commit((s) => {
      const r = change(s);
      if (keep(r)) s.revision++;
      return r;
    });
    if (keep(result)) {
      this.#publisher.schedule();
      await this.#ensureAlarm();
    }
    return result;
  }

  #active(): MeshBundle {
    const stored = history.activeBundle(this.#s, bundledConfig);
    // A config applied by an earlier meshwork is read in today's form (every default filled in).
    let bundle = normalized.get(stored);
    if (!bundle) {
      try {
        bundle = normalizeBundle(stored);
      } catch (e) {
        // Valid when applied, not by today's schema: still what is in force, shown as stored.
        // (Gateways log it and keep serving the config they have.) Roll back or apply anew.
        logEvent('error', 'config in force does not pass the current schema', {
          version: stored.version,
          error: errorText(e),
        });
        bundle = stored;
      }
      normalized.set(stored, bundle);
    }
    return bundle;
  }

  #settings(): { ttlMs: number; probeMs: number } {
    // The schema's defaults for anything the config in force does not say (or says wrongly).
    const parsed = Registry.safeParse(this.#active().config.registry ?? {});
    const r = parsed.success ? parsed.data : Registry.parse({});
    return { ttlMs: r.heartbeatTtl * 1000, probeMs: r.probeInterval * 1000 };
  }

  async #ensureAlarm(): Promise<void> {
    if (Object.keys(this.#s.instances).length === 0) return;
    // An alarm set under an earlier config may be further off than the config in force allows.
    const { ttlMs, probeMs } = this.#settings();
    const due = Date.now() + Math.min(probeMs, ttlMs);
    const at = await this.ctx.storage.getAlarm();
    if (at === null || at > due) await this.ctx.storage.setAlarm(due);
  }

  // ---- self-registration ------------------------------------------------------------------

  /** A service's heartbeat (self-registration): creates its record or keeps it alive. */
  async heartbeat(info: InstanceInfo): Promise<{ id: string; status: Instance['status'] } | { refused: string }> {
    this.#count('heartbeat');
    const result = await this.#route(
      (s) => records.heartbeat(s, info, Date.now()),
      (r) => 'routing' in r && r.routing,
    );
    if ('refused' in result) return result;
    if (!result.routing) await this.#ensureAlarm();
    return { id: result.instance.id, status: result.instance.status };
  }

  // ---- control plane ----------------------------------------------------------------------

  async register(info: InstanceInfo, actor: string): Promise<Instance> {
    this.#count('register');
    return this.#route((s) => records.register(s, info, actor, Date.now()));
  }

  async deregister(id: string, actor: string): Promise<boolean> {
    this.#count('deregister');
    return this.#route(
      (s) => records.deregister(s, id, actor, Date.now()),
      (removed) => removed,
    );
  }

  async applyConfig(bundle: MeshBundle, actor: string, message?: string): Promise<history.ApplyResult> {
    this.#count('applyConfig');
    return this.#route(
      (s) => history.applyConfig(s, bundledConfig, bundle, actor, message, Date.now()),
      (r) => !r.unchanged,
    );
  }

  async rollback(
    target: number | undefined,
    actor: string,
  ): Promise<{ revision: number; version: string } | { error: string }> {
    this.#count('rollback');
    const to = history.rollbackTarget(this.#s, target);
    if (typeof to !== 'number') return to;
    const entry = this.#s.configs.find((c) => c.revision === to);
    const bundle = entry && (this.#s.bundles.get(to) ?? (await loadBundle(this.ctx.storage, entry)));
    return this.#route((s) => {
      // Only the config in force is held in memory.
      for (const rev of [...s.bundles.keys()]) if (rev !== to) s.bundles.delete(rev);
      if (bundle) s.bundles.set(to, bundle);
      return history.rollback(s, bundledConfig, to, actor, Date.now());
    });
  }

  getConfig(): { revision: number; bundle: MeshBundle; applied: boolean } {
    this.#count('getConfig');
    return { revision: this.#s.head, bundle: this.#active(), applied: this.#s.head !== 0 };
  }

  status(): RegistryStatus {
    this.#count('status');
    return {
      revision: this.#s.revision,
      epoch: this.#s.epoch,
      configRevision: this.#s.head,
      configVersion: this.#active().version,
      instances: Object.values(this.#s.instances),
      configs: this.#s.configs,
      audit: this.#s.audit.slice(-100),
    };
  }

  /** For readers of KV: which snapshots are current (registry/source.ts). */
  latest(): RegistryLatest {
    this.#count('latest');
    return {
      epoch: this.#s.epoch,
      revision: this.#s.revision,
      configAfter: this.#s.configSince.after,
      configAgeMs: Date.now() - this.#s.configSince.at,
    };
  }

  snapshot(): Snapshot {
    this.#count('snapshot');
    return this.#snapshot();
  }

  #snapshot(): Snapshot {
    return {
      revision: this.#s.revision,
      epoch: this.#s.epoch,
      configRevision: this.#s.head,
      bundle: this.#s.head === 0 ? null : this.#active(),
      instances: Object.values(this.#s.instances),
      publishedAt: Date.now(),
    };
  }

  stats(): Record<string, number> {
    return { ...this.calls };
  }

  /** Publishes now (the admin API and tests use it to avoid waiting for the coalescing timer). */
  async publish(): Promise<number> {
    this.#count('publish');
    await this.#publisher.now();
    return this.#s.revision;
  }

  // ---- expiry and health ------------------------------------------------------------------

  override async alarm(): Promise<void> {
    const { ttlMs, probeMs } = this.#settings();
    const config = this.#active().config;
    await this.#route(
      (s) => records.expireSilent(s, ttlMs, Date.now()),
      (expired) => expired,
    );
    // Probes run outside any change: a heartbeat arriving meanwhile is kept; results go onto
    // the records as they are when the probes are done.
    const active = Object.values(this.#s.instances).filter((i) => i.status === 'active');
    const results = await Promise.all(
      active.map(async (inst): Promise<records.ProbeResult> => {
        const target = targetOf(inst, config, this.env);
        if (!target) return { id: inst.id, ok: undefined, detail: 'no binding or URL to probe' };
        const r = await probe(inst, target);
        return { id: inst.id, ok: r.ok, detail: r.detail };
      }),
    );
    await wakeUnregistered(config, this.#s.instances, this.env);
    await this.#route(
      (s) => records.recordProbes(s, results, Date.now()),
      (changed) => changed,
    );
    if (Object.keys(this.#s.instances).length > 0)
      await this.ctx.storage.setAlarm(Date.now() + Math.min(probeMs, ttlMs));
  }
}
