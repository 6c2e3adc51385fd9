/**
 * The registry: the single, strongly consistent source of truth for the mesh's live state, one
 * Durable Object (idFromName("registry")) in the gateway worker. It holds endpoint records and
 * the applied routes config with its history, and publishes a snapshot to KV on every change.
 * Gateways and services route from that snapshot: nothing on the request path calls this object.
 *
 * An alarm expires records that stop heartbeating and probes health endpoints; both take an
 * endpoint out of rotation (and put it back when it recovers), visibly in status. The rules live
 * in instances.ts, history.ts, prober.ts and publisher.ts; this class orders them and persists.
 */
import { DurableObject } from 'cloudflare:workers';
import { kvOf, namespaceOf, type MeshBindings } from '../../core/bindings.ts';
import { normalizeBundle } from '../../config/bundle.ts';
import { Registry, type MeshBundle } from '../../config/schema.ts';
import { errorText, logEvent } from '../../core/log.ts';
import { bundledConfig } from '../../generated/bundle.ts';
import type { AppliedConfig, AuditEntry, Instance, InstanceInfo, Snapshot } from '../../registry/types.ts';
import { REGISTRY_NAME } from '../../registry/types.ts';
import * as history from './history.ts';
import * as records from './instances.ts';
import { probe, targetOf, wakeUnregistered } from './prober.ts';
import { Publisher } from './publisher.ts';
import { loadState, freshState, type RegistryState } from './state.ts';

export interface RegistryStatus {
  revision: number;
  epoch: string;
  configRevision: number;
  configVersion: string;
  instances: Instance[];
  configs: Array<Omit<AppliedConfig, 'bundle'> & { version: string }>;
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
    );
    void ctx.blockConcurrencyWhile(async () => {
      const { state, upgraded } = loadState(await ctx.storage.get<RegistryState>('state'));
      this.#s = state;
      // Records written by an earlier meshwork: persisted and published in today's form now.
      if (upgraded) await this.#changed();
    });
  }

  #count(method: string): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
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

  /** Records a change that alters routing: new revision, persisted, published. */
  async #changed(): Promise<void> {
    this.#s.revision++;
    await this.ctx.storage.put('state', this.#s);
    this.#publisher.schedule();
    await this.#ensureAlarm();
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
  async heartbeat(info: InstanceInfo): Promise<{ id: string; status: Instance['status'] }> {
    this.#count('heartbeat');
    const { instance, routing } = records.heartbeat(this.#s, info, Date.now());
    if (routing) await this.#changed();
    else {
      await this.ctx.storage.put('state', this.#s);
      await this.#ensureAlarm();
    }
    return { id: instance.id, status: instance.status };
  }

  // ---- control plane ----------------------------------------------------------------------

  async register(info: InstanceInfo, actor: string): Promise<Instance> {
    this.#count('register');
    const inst = records.register(this.#s, info, actor, Date.now());
    await this.#changed();
    return inst;
  }

  async deregister(id: string, actor: string): Promise<boolean> {
    this.#count('deregister');
    if (!records.deregister(this.#s, id, actor, Date.now())) return false;
    await this.#changed();
    return true;
  }

  async applyConfig(bundle: MeshBundle, actor: string, message?: string): Promise<history.ApplyResult> {
    this.#count('applyConfig');
    const result = history.applyConfig(this.#s, bundledConfig, bundle, actor, message, Date.now());
    if (!result.unchanged) await this.#changed();
    return result;
  }

  async rollback(
    target: number | undefined,
    actor: string,
  ): Promise<{ revision: number; version: string } | { error: string }> {
    this.#count('rollback');
    const result = history.rollback(this.#s, bundledConfig, target, actor, Date.now());
    if (!('error' in result)) await this.#changed();
    return result;
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
      configs: this.#s.configs.map(({ bundle, ...rest }) => ({ ...rest, version: bundle.version })),
      audit: this.#s.audit.slice(-100),
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
    let changed = records.expireSilent(this.#s, ttlMs, Date.now());
    const probes = await Promise.all(
      Object.values(this.#s.instances)
        .filter((i) => i.status === 'active')
        .map((i) => this.#probe(i)),
    );
    await wakeUnregistered(config, this.#s.instances, this.env);
    changed = probes.some(Boolean) || changed;
    if (changed) await this.#changed();
    if (Object.keys(this.#s.instances).length > 0)
      await this.ctx.storage.setAlarm(Date.now() + Math.min(probeMs, ttlMs));
  }

  /** Probes one record; returns whether its health changed. */
  async #probe(inst: Instance): Promise<boolean> {
    const target = targetOf(inst, this.#active().config, this.env);
    const result = target ? await probe(inst, target) : { ok: false, detail: 'no binding or URL to probe' };
    // Without a way to probe, a record is judged by its heartbeats alone.
    const health = target ? (result.ok ? 'healthy' : 'unhealthy') : inst.health;
    inst.lastProbe = { at: Date.now(), ok: result.ok, detail: result.detail };
    if (health === inst.health) return false;
    history.audit(this.#s, Date.now(), 'registry', 'health', `${inst.id} is ${health} (${result.detail})`);
    inst.health = health;
    return true;
  }
}
