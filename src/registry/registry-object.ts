/**
 * The registry: the single, strongly consistent source of truth for the mesh's live state, one
 * Durable Object (idFromName("registry")) in the gateway worker. It holds service instances and
 * the applied routes config with its history, and publishes a snapshot to KV on every change.
 * Gateways and services route from that snapshot: nothing on the request path calls this object.
 *
 * An alarm expires instances that stop heartbeating and probes health endpoints; both take an
 * instance out of rotation (and put it back when it recovers), visibly in status.
 */
import { DurableObject } from 'cloudflare:workers';
import { bundledConfig } from '../generated/bundle.ts';
import type { MeshBundle, MeshConfig } from '../config/schema.ts';
import { logEvent } from '../mesh/upstream.ts';
import {
  instanceId,
  SNAPSHOT_KEY,
  SNAPSHOT_REVISION_KEY,
  snapshotKey,
  type AppliedConfig,
  type AuditEntry,
  type Instance,
  type InstanceInfo,
  type Snapshot,
} from './types.ts';

export { REGISTRY_NAME } from './types.ts';
const DEFAULT_TTL_S = 90;
const DEFAULT_PROBE_S = 15;
const PROBE_TIMEOUT_MS = 3000;
/** KV accepts about one write per second per key: publishes are coalesced to that. */
const PUBLISH_MIN_INTERVAL_MS = 1000;
const MAX_HISTORY = 50;
const MAX_AUDIT = 500;

interface Persisted {
  instances: Record<string, Instance>;
  configs: AppliedConfig[];
  head: number;
  /** Config revisions in force, in order: what "the previous config" means for rollback. */
  heads: number[];
  revision: number;
  /** Random, fixed for the life of this registry's storage: a reset is told apart from an old revision. */
  epoch: string;
  audit: AuditEntry[];
}

export interface RegistryStatus {
  revision: number;
  epoch: string;
  configRevision: number;
  configVersion: string;
  instances: Instance[];
  configs: Array<Omit<AppliedConfig, 'bundle'> & { version: string }>;
  audit: AuditEntry[];
}

export class MeshRegistry extends DurableObject<Record<string, unknown>> {
  #s: Persisted = {
    instances: {},
    configs: [],
    head: 0,
    heads: [0],
    revision: 0,
    epoch: crypto.randomUUID(),
    audit: [],
  };
  #lastPublish = 0;
  #publishTimer: ReturnType<typeof setTimeout> | undefined;
  /** Calls per method since this object started (tests check the request path makes none). */
  readonly calls: Record<string, number> = {};

  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      const saved = await ctx.storage.get<Persisted>('state');
      if (saved) this.#s = { ...this.#s, ...saved, heads: saved.heads ?? [saved.head] };
    });
  }

  #count(method: string): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
  }

  #active(): MeshBundle {
    return this.#s.configs.find((c) => c.revision === this.#s.head)?.bundle ?? bundledConfig;
  }

  #settings(): { ttlMs: number; probeMs: number } {
    const r = this.#active().config.registry;
    return { ttlMs: (r?.heartbeatTtl ?? DEFAULT_TTL_S) * 1000, probeMs: (r?.probeInterval ?? DEFAULT_PROBE_S) * 1000 };
  }

  /** Every audited event is part of a change about to be made: it carries that change's revision. */
  #audit(actor: string, action: AuditEntry['action'], detail: string): void {
    this.#s.audit.push({ at: Date.now(), actor, action, detail, revision: this.#s.revision + 1 });
    if (this.#s.audit.length > MAX_AUDIT) this.#s.audit.splice(0, this.#s.audit.length - MAX_AUDIT);
  }

  /** Records a change that alters routing: new revision, persisted, published. */
  async #changed(): Promise<void> {
    this.#s.revision++;
    await this.ctx.storage.put('state', this.#s);
    this.#schedulePublish();
    await this.#ensureAlarm();
  }

  async #ensureAlarm(): Promise<void> {
    if (Object.keys(this.#s.instances).length === 0) return;
    // An alarm set under an earlier config may be further off than the config in force allows.
    const due = Date.now() + Math.min(this.#settings().probeMs, this.#settings().ttlMs);
    const at = await this.ctx.storage.getAlarm();
    if (at === null || at > due) await this.ctx.storage.setAlarm(due);
  }

  // ---- self-registration ------------------------------------------------------------------

  /** A service's heartbeat (self-registration): creates the instance or keeps it alive. */
  async heartbeat(info: InstanceInfo): Promise<{ id: string; status: Instance['status'] }> {
    this.#count('heartbeat');
    const id = instanceId(info.service, info.version);
    const now = Date.now();
    const prior = this.#s.instances[id];
    const wasActive = prior?.status === 'active';
    const fresh: Instance = {
      ...info,
      id,
      registeredAt: now,
      lastHeartbeat: now,
      status: 'active',
      health: 'unknown',
      source: 'self',
    };
    // In place: a probe running meanwhile holds this object and records its result on it.
    const inst = prior ? Object.assign(prior, info, { lastHeartbeat: now, status: 'active' as const }) : fresh;
    this.#s.instances[id] = inst;
    if (!prior || !wasActive) {
      this.#audit(info.service, 'register', prior ? `${id} is heartbeating again` : `${id} registered itself`);
      await this.#changed();
    } else {
      await this.ctx.storage.put('state', this.#s);
      await this.#ensureAlarm();
    }
    return { id, status: inst.status };
  }

  // ---- control plane ----------------------------------------------------------------------

  /** An operator registers an instance (e.g. a backend outside Workers). It does not expire; probes decide its health. */
  async register(info: InstanceInfo, actor: string): Promise<Instance> {
    this.#count('register');
    const id = instanceId(info.service, info.version);
    const now = Date.now();
    const inst: Instance = {
      ...info,
      id,
      registeredAt: now,
      lastHeartbeat: now,
      status: 'active',
      health: 'unknown',
      source: 'admin',
    };
    this.#s.instances[id] = inst;
    this.#audit(
      actor,
      'register',
      `${id} registered${info.url ? ` at ${info.url}` : info.binding ? ` via ${info.binding}` : ''}`,
    );
    await this.#changed();
    return inst;
  }

  async deregister(id: string, actor: string): Promise<boolean> {
    this.#count('deregister');
    if (!this.#s.instances[id]) return false;
    delete this.#s.instances[id];
    this.#audit(actor, 'deregister', `${id} deregistered`);
    await this.#changed();
    return true;
  }

  async applyConfig(
    bundle: MeshBundle,
    actor: string,
    message?: string,
  ): Promise<{ revision: number; version: string; unchanged: boolean }> {
    this.#count('applyConfig');
    if (this.#active().version === bundle.version)
      return { revision: this.#s.head, version: bundle.version, unchanged: true };
    const revision = Math.max(0, ...this.#s.configs.map((c) => c.revision)) + 1;
    this.#s.configs.push({
      revision,
      bundle,
      appliedAt: Date.now(),
      appliedBy: actor,
      ...(message ? { message } : {}),
    });
    if (this.#s.configs.length > MAX_HISTORY) this.#s.configs.splice(0, this.#s.configs.length - MAX_HISTORY);
    this.#setHead(revision);
    this.#audit(actor, 'apply', `config revision ${revision} (${bundle.version})${message ? `: ${message}` : ''}`);
    await this.#changed();
    return { revision, version: bundle.version, unchanged: false };
  }

  /**
   * Back to an earlier config revision (default: the one before the current). Revision 0 is the
   * bundled routes/. The rollback is itself a new entry in the audit log, not a rewrite of history.
   */
  async rollback(
    target: number | undefined,
    actor: string,
  ): Promise<{ revision: number; version: string } | { error: string }> {
    this.#count('rollback');
    const known = [0, ...this.#s.configs.map((c) => c.revision)];
    // Default: the config that was in force before this one (still in the history).
    const to = target ?? [...this.#s.heads].reverse().find((r) => r !== this.#s.head && known.includes(r));
    if (to === undefined) return { error: 'there is no earlier config to roll back to' };
    if (!known.includes(to))
      return { error: `config revision ${to} is not in the history (have: ${known.join(', ')})` };
    if (to === this.#s.head) return { error: `config revision ${to} is already in force` };
    this.#setHead(to);
    const version = this.#active().version;
    this.#audit(actor, 'rollback', `config back to revision ${to} (${version})`);
    await this.#changed();
    return { revision: to, version };
  }

  #setHead(revision: number): void {
    this.#s.head = revision;
    this.#s.heads.push(revision);
    if (this.#s.heads.length > MAX_HISTORY * 2) this.#s.heads.splice(0, this.#s.heads.length - MAX_HISTORY * 2);
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

  // ---- publishing -------------------------------------------------------------------------

  #schedulePublish(): void {
    if (this.#publishTimer) return;
    const wait = Math.max(0, this.#lastPublish + PUBLISH_MIN_INTERVAL_MS - Date.now());
    this.#publishTimer = setTimeout(() => {
      this.#publishTimer = undefined;
      void this.#publish();
    }, wait);
  }

  /** Publishes now (tests and the alarm use it to avoid waiting for the coalescing timer). */
  async publish(): Promise<number> {
    this.#count('publish');
    // This publish carries every change so far: the coalesced one queued for them is not needed.
    if (this.#publishTimer) {
      clearTimeout(this.#publishTimer);
      this.#publishTimer = undefined;
    }
    await this.#publish();
    return this.#s.revision;
  }

  #publishing: Promise<void> = Promise.resolve();

  /** One publish at a time, so the two keys always come from the same snapshot. */
  #publish(): Promise<void> {
    this.#publishing = this.#publishing.then(() => this.#publishNow());
    return this.#publishing;
  }

  async #publishNow(): Promise<void> {
    const kv = this.env.MESH_KV as KVNamespace | undefined;
    if (!kv) return;
    this.#lastPublish = Date.now();
    const snap = this.#snapshot();
    try {
      // The full snapshot first, then the small key isolates poll: nobody sees a revision
      // whose snapshot is not there yet.
      const marker = `${snap.epoch}:${snap.revision}`;
      const body = JSON.stringify(snap);
      // Kept a day: long enough for any isolate that saw the marker to read it.
      await kv.put(snapshotKey(marker), body, { expirationTtl: 86_400 });
      await kv.put(SNAPSHOT_KEY, body);
      await kv.put(SNAPSHOT_REVISION_KEY, marker);
    } catch (e) {
      logEvent('error', 'registry publish failed', {
        revision: snap.revision,
        error: String((e as Error)?.message ?? e),
      });
      this.#schedulePublish();
    }
  }

  // ---- expiry and health ------------------------------------------------------------------

  override async alarm(): Promise<void> {
    const { ttlMs, probeMs } = this.#settings();
    const now = Date.now();
    let changed = false;
    for (const inst of Object.values(this.#s.instances)) {
      if (inst.source === 'self' && inst.status === 'active' && now - inst.lastHeartbeat > ttlMs) {
        inst.status = 'expired';
        this.#audit(
          'registry',
          'expire',
          `${inst.id}: no heartbeat for ${Math.round((now - inst.lastHeartbeat) / 1000)}s`,
        );
        changed = true;
      }
    }
    const probes = await Promise.all(
      Object.values(this.#s.instances)
        .filter((i) => i.status === 'active')
        .map((i) => this.#probe(i)),
    );
    await this.#wakeUnregistered();
    changed = probes.some(Boolean) || changed;
    if (changed) await this.#changed();
    if (Object.keys(this.#s.instances).length > 0)
      await this.ctx.storage.setAlarm(Date.now() + Math.min(probeMs, ttlMs));
  }

  /**
   * Config backends that never registered get a health request too: a wrapped service
   * heartbeats on any request, so this is how an idle deployment (e.g. a version that takes
   * no traffic yet) finds its way into the registry. The answer itself changes nothing.
   */
  async #wakeUnregistered(): Promise<void> {
    const config = this.#active().config;
    const waits: Array<Promise<unknown>> = [];
    for (const [service, svc] of Object.entries(config.services)) {
      for (const b of svc.backends) {
        // Never registered, or expired: a request makes a live service heartbeat again.
        if (this.#s.instances[instanceId(service, b.version)]?.status === 'active') continue;
        const target = this.#targetOf({ service, ...(b.version ? { version: b.version } : {}) } as Instance);
        if (target?.kind !== 'binding') continue;
        waits.push(
          target.fetcher
            .fetch(`https://${service}/_mesh/health`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
            .then((r) => r.body?.cancel())
            .catch(() => undefined),
        );
      }
    }
    await Promise.all(waits);
  }

  /** GET the instance's health path; returns whether its health changed. */
  async #probe(inst: Instance): Promise<boolean> {
    const target = this.#targetOf(inst);
    let ok = false;
    let detail: string;
    if (!target) {
      detail = 'no binding or URL to probe';
    } else {
      try {
        const path = inst.healthPath ?? '/_mesh/health';
        const res =
          target.kind === 'binding'
            ? await target.fetcher.fetch(`https://${inst.service}${path}`, {
                signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
              })
            : await fetch(new URL(path.replace(/^\//, ''), target.url.endsWith('/') ? target.url : `${target.url}/`), {
                signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
                redirect: 'manual',
              });
        await res.body?.cancel();
        ok = res.status >= 200 && res.status < 300;
        detail = `HTTP ${res.status}`;
      } catch (e) {
        detail = String((e as Error)?.message ?? e);
      }
    }
    // Without a way to probe, an instance is judged by its heartbeats alone.
    const health = target ? (ok ? 'healthy' : 'unhealthy') : inst.health;
    inst.lastProbe = { at: Date.now(), ok, detail };
    if (health === inst.health) return false;
    this.#audit('registry', 'health', `${inst.id} is ${health} (${detail})`);
    inst.health = health;
    return true;
  }

  #targetOf(inst: Instance): { kind: 'binding'; fetcher: Fetcher } | { kind: 'url'; url: string } | undefined {
    let binding = inst.binding;
    let url = inst.url;
    if (!binding && !url) {
      const config: MeshConfig = this.#active().config;
      const b = config.services[inst.service]?.backends.find((x) => x.version === inst.version);
      binding = b?.binding;
      url = b?.url;
    }
    if (binding) {
      const f = this.env[binding] as Fetcher | undefined;
      return f && typeof f.fetch === 'function' ? { kind: 'binding', fetcher: f } : undefined;
    }
    return url ? { kind: 'url', url } : undefined;
  }
}
