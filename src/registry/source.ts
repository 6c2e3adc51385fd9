/**
 * The read path: where gateways and services get the config and instances they route by.
 *
 * Each isolate keeps the compiled plan in memory and, at most every `refreshInterval`, reads a
 * small revision key from KV in the background (waitUntil): while traffic flows the request path
 * never waits on KV, and it never calls the registry object. A request that finds the snapshot
 * stale (last checked 2 x refreshInterval or longer ago: the isolate was idle) waits, up to a
 * second, for the check it starts instead (see MeshSource.get). A new revision brings the full
 * snapshot, compiled once per config version. If KV is unreachable, the last snapshot keeps
 * serving; if nothing was ever applied, the routes/ bundled at build time are the floor.
 *
 * The source also owns the isolate's MeshRuntime: state that outlives config versions.
 */
import { entrypointOf, kvOf, namespaceOf, type MeshBindings } from '../core/bindings.ts';
import { errorText, logEvent } from '../core/log.ts';
import { normalizeBundle } from '../config/bundle.ts';
import type { IdentitySpec, MeshBundle } from '../config/schema.ts';
import { compilePlan, type Plan } from '../plan/compile.ts';
import { MeshRuntime } from '../runtime/runtime.ts';
import { overlayService } from './overlay.ts';
import { verifySnapshot } from './signature.ts';
import {
  SNAPSHOT_KEY,
  SNAPSHOT_REVISION_KEY,
  REGISTRY_NAME,
  snapshotKey,
  upgradeInstance,
  type Instance,
  type RegistryLatest,
  type Snapshot,
} from './types.ts';

/**
 * How long after a config change KV may still show the snapshot before it: KV caches a value
 * for up to 60 s per location, and the registry publishes within a second or two.
 */
const KV_LAG_MS = 120_000;
const LATEST_TIMEOUT_MS = 2000;

/**
 * The registry's own word on which snapshots are current, over a channel services cannot forge:
 * the gateway's Durable Object binding, or the RegistryHeartbeat entrypoint services bind.
 */
function registryReader(env: MeshBindings): { latest(): Promise<RegistryLatest> } | undefined {
  const ns = namespaceOf(env, 'MESH_REGISTRY');
  if (ns) return ns.get(ns.idFromName(REGISTRY_NAME)) as unknown as { latest(): Promise<RegistryLatest> };
  return entrypointOf(env, 'MESH_REGISTRY', 'latest') as unknown as { latest(): Promise<RegistryLatest> } | undefined;
}

/**
 * Why a genuine snapshot must not be served although it is newer than this isolate's: it was
 * signed for a registry storage since reset, or carries a config that was replaced longer ago
 * than KV can lag, so someone with write access to KV put an old one back. Undefined when it
 * may be served, including when the registry cannot be asked (then its signature is what counts).
 */
async function replayedSnapshot(snap: Snapshot, env: MeshBindings, lagMs: number): Promise<string | undefined> {
  const reader = registryReader(env);
  if (!reader) return undefined;
  let latest: RegistryLatest;
  let timer: ReturnType<typeof setTimeout> | null = null;
  try {
    latest = await Promise.race([
      reader.latest(),
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error('no answer in time')), LATEST_TIMEOUT_MS)),
      ),
    ]);
  } catch (e) {
    logEvent('warn', 'cannot ask the registry which snapshot is current; trusting the signature', {
      error: errorText(e),
    });
    return undefined;
  } finally {
    clearTimeout(timer);
  }
  if (latest.epoch !== snap.epoch) return `signed for registry epoch ${snap.epoch}, the registry's is ${latest.epoch}`;
  if (snap.revision <= latest.configAfter && latest.configAgeMs > lagMs)
    return `revision ${snap.revision} carries a config replaced at revision ${latest.configAfter + 1}, ${Math.round(latest.configAgeMs / 1000)} s ago`;
  return undefined;
}

/**
 * A request that must wait for a check of KV (an isolate's first, or after idle) waits at most
 * this long after the check started; then the held snapshot serves (logged) and the check goes
 * on in the background.
 */
const REFRESH_WAIT_MS = 1000;
/**
 * A snapshot last checked this many refresh intervals ago is stale: the request waits for the
 * check. Two, not one: with traffic at least once per refreshInterval, a check starts when the
 * last is refreshInterval old and finishes long before it is twice that, so flowing traffic never
 * waits; with one, the request that starts each check would wait for it, once per interval.
 */
const STALE_AFTER_INTERVALS = 2;
const MAX_COMPILED = 4;

export interface Served {
  plan: Plan;
  /** Snapshot revision serving (-1: the bundled routes/, no snapshot seen). */
  revision: number;
  /** The registry epoch of that snapshot. */
  epoch?: string;
  /** When the registry published it (0: the bundled routes/). */
  publishedAt: number;
  /** Config revision in force (0: the bundled routes/). */
  configRevision: number;
}

export class MeshSource {
  readonly runtime: MeshRuntime;
  readonly #compiled = new Map<string, Plan>();
  readonly #live: boolean;
  readonly #kvLagMs: number;
  readonly #identity: IdentitySpec;
  #served: Served;
  /** When the last check of KV started (0: never). At most one starts per refreshInterval. */
  #attemptAt = 0;
  /** The check a stale isolate's requests wait for (up to REFRESH_WAIT_MS after it started). */
  #blocking: Promise<void> | undefined;
  #inflight: Promise<void> | undefined;

  /**
   * @param live false: serve `bundled` only, never reading KV (a fixed config: tests, benchmarks,
   *   a service given its own config)
   * @param kvLagMs how long after a config change a snapshot with the config before it is still
   *   served (KV's lag; tests set 0)
   */
  constructor(
    readonly bundled: MeshBundle,
    options: { live?: boolean; runtime?: MeshRuntime; plan?: Plan; kvLagMs?: number } = {},
  ) {
    this.#live = options.live ?? true;
    this.#kvLagMs = options.kvLagMs ?? KV_LAG_MS;
    this.runtime = options.runtime ?? new MeshRuntime();
    this.#served = { plan: options.plan ?? this.#compile(bundled), revision: -1, configRevision: 0, publishedAt: 0 };
    // Snapshots are checked with the deployment's keys, never with keys a snapshot brings.
    this.#identity = normalizeBundle(bundled).config.identity;
  }

  /** A source that always serves this plan, never reading KV. */
  static fixed(plan: Plan, runtime?: MeshRuntime): MeshSource {
    return new MeshSource(
      { version: plan.version, config: plan.config },
      { live: false, plan, ...(runtime ? { runtime } : {}) },
    );
  }

  get served(): Served {
    return this.#served;
  }

  /** Whether this source follows the registry's snapshots in KV (false: a fixed config). */
  get live(): boolean {
    return this.#live;
  }

  /**
   * The plan to serve this request with. The rule (docs/registry.md, "How fast a change arrives"):
   *
   * - checked less than refreshInterval ago: served as held;
   * - checked refreshInterval or longer ago: a check of KV starts in the background (waitUntil),
   *   the request is served as held, with no added latency (traffic is flowing);
   * - checked 2 x refreshInterval or longer ago, or never (a fresh isolate, or one that was idle):
   *   the request waits for the check, until at most REFRESH_WAIT_MS after it started; requests
   *   arriving meanwhile wait for the same check. Past that (KV slow) the held snapshot serves,
   *   logged; a check that fails is logged and the held snapshot serves at once.
   *
   * So a change KV shows at time T is served by every request that starts after
   * T + 2 x refreshInterval (its last completed check started after T, or it waits for one),
   * unless KV is slow (a check longer than REFRESH_WAIT_MS or 2 x refreshInterval) or failing.
   */
  async get(env: MeshBindings, waitUntil: (p: Promise<unknown>) => void): Promise<Served> {
    const kv = this.#live ? kvOf(env) : undefined;
    if (!kv) return this.#served;
    const now = Date.now();
    const every = this.#served.plan.config.registry.refreshInterval * 1000;
    if (now - this.#attemptAt < every) {
      // Requests arriving while a stale isolate's check runs wait for the same check.
      const blocking = this.#blocking;
      if (blocking) await this.#waitFor(blocking, this.#attemptAt + REFRESH_WAIT_MS - now);
      return this.#served;
    }
    // Stale: never checked (a fresh isolate) or not for two intervals (it was idle).
    const stale = this.#attemptAt === 0 || now - this.#attemptAt >= STALE_AFTER_INTERVALS * every;
    this.#attemptAt = now;
    const check = this.#refresh(kv, env, waitUntil);
    waitUntil(check);
    if (!stale) return this.#served;
    this.#blocking = check;
    void check.finally(() => {
      if (this.#blocking === check) this.#blocking = undefined;
    });
    if (!(await this.#waitFor(check, REFRESH_WAIT_MS))) {
      logEvent('warn', 'snapshot check is slow; serving the held snapshot meanwhile', {
        revision: this.#served.revision,
        waitedMs: REFRESH_WAIT_MS,
      });
    }
    return this.#served;
  }

  /**
   * Waits for a check at most `ms`. Each waiting request holds a timer of its own: workerd
   * cancels a request that waits only on another request's I/O.
   */
  async #waitFor(check: Promise<void>, ms: number): Promise<boolean> {
    if (ms <= 0) return false;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const done = await Promise.race([
      check.then(() => true),
      new Promise<false>((r) => (timer = setTimeout(() => r(false), ms))),
    ]);
    clearTimeout(timer);
    return done;
  }

  #refresh(kv: KVNamespace, env: MeshBindings, waitUntil: (p: Promise<unknown>) => void): Promise<void> {
    this.#inflight ??= (async () => {
      try {
        await this.#check(kv, env, waitUntil);
      } catch (e) {
        logEvent('warn', 'snapshot refresh failed; serving the last one', {
          revision: this.#served.revision,
          error: errorText(e),
        });
      } finally {
        this.#inflight = undefined;
      }
    })();
    return this.#inflight;
  }

  /** Reads the marker and, when it names a newer snapshot, serves that (if genuine and current). */
  async #check(kv: KVNamespace, env: MeshBindings, waitUntil: (p: Promise<unknown>) => void): Promise<void> {
    const marker = await kv.get(SNAPSHOT_REVISION_KEY);
    if (marker === null || marker === `${this.#served.epoch}:${this.#served.revision}`) return;
    // The snapshot the marker names, under its own key: KV's per-location cache cannot hand
    // back an older snapshot under a newer marker. The latest is also kept without expiry.
    let stored = await kv.getWithMetadata(snapshotKey(marker), 'text');
    if (stored.value === null) stored = await kv.getWithMetadata(SNAPSHOT_KEY, 'text');
    if (stored.value === null) return;
    const keys = this.runtime.identity(this.#identity).keys.publicKeys;
    const check = await verifySnapshot(stored.value, stored.metadata, keys, this.runtime.keyIo(env, waitUntil));
    if (!check.ok) {
      this.runtime.counters.snapshotsRejected++;
      logEvent('error', 'snapshot rejected; serving the last good one', { marker, reason: check.reason });
      return;
    }
    const snap = check.snapshot;
    // Never back to an older snapshot: within the registry's epoch by revision, across a
    // storage reset (a new epoch) by when it was published.
    const current = this.#served;
    const newer =
      snap.epoch === current.epoch ? snap.revision > current.revision : snap.publishedAt > current.publishedAt;
    if (!newer) return;
    const replayed = await replayedSnapshot(snap, env, this.#kvLagMs);
    if (replayed) {
      this.runtime.counters.snapshotsRejected++;
      logEvent('error', 'snapshot rejected; serving the last good one', { marker, reason: replayed });
      return;
    }
    this.apply(snap);
  }

  /** Serves a snapshot (also used directly by tests). */
  apply(snap: Snapshot): void {
    const base = this.#compile(snap.bundle ?? this.bundled);
    this.#served = {
      // A snapshot published before an upgrade names records in their old form.
      plan: withInstances(base, snap.instances.map(upgradeInstance)),
      revision: snap.revision,
      epoch: snap.epoch,
      configRevision: snap.configRevision,
      publishedAt: snap.publishedAt,
    };
  }

  /** Compiled once per config version; the runtime's caches survive any number of them. */
  #compile(bundle: MeshBundle): Plan {
    let plan = this.#compiled.get(bundle.version);
    if (!plan) {
      plan = compilePlan(bundle);
      this.#compiled.set(bundle.version, plan);
      if (this.#compiled.size > MAX_COMPILED) this.#compiled.delete(this.#compiled.keys().next().value!);
    }
    return plan;
  }
}

export function withInstances(base: Plan, instances: readonly Instance[]): Plan {
  if (instances.length === 0) return base;
  return {
    ...base,
    services: new Map([...base.services].map(([name, svc]) => [name, overlayService(svc, instances)])),
  };
}
