/**
 * The read path: where gateways and services get the config and instances they route by.
 *
 * Each isolate keeps the compiled mesh in memory and, at most every `refreshInterval`, reads a
 * small revision key from KV in the background (waitUntil): the request path never waits on KV
 * after the first request, and never calls the registry object. A new revision brings the full
 * snapshot, compiled once per config version. If KV is unreachable, the last snapshot keeps
 * serving; if nothing was ever applied, the routes/ bundled at build time are the floor.
 */
import type { MeshBundle } from '../config/schema.ts';
import { compileMesh, type CompiledMesh } from '../mesh/compile.ts';
import { logEvent } from '../mesh/upstream.ts';
import { overlayService } from './overlay.ts';
import { SNAPSHOT_REVISION_KEY, snapshotKey, type Instance, type Snapshot } from './types.ts';

const DEFAULT_REFRESH_S = 5;
/** The first request of an isolate waits this long at most for the snapshot. */
const FIRST_LOAD_TIMEOUT_MS = 1000;
const MAX_COMPILED = 4;

export interface ServedMesh {
  mesh: CompiledMesh;
  /** Snapshot revision serving (-1: the bundled routes/, no snapshot seen). */
  revision: number;
  /** The registry epoch of that snapshot. */
  epoch?: string;
  /** Config revision in force (0: the bundled routes/). */
  configRevision: number;
}

export class MeshSource {
  readonly #compiled = new Map<string, CompiledMesh>();
  #served: ServedMesh;
  #lastCheck = 0;
  /** The first load from KV: every request of a fresh isolate waits for it (up to a second). */
  #firstLoad: Promise<unknown> | undefined;
  #loaded = false;
  #inflight: Promise<void> | undefined;

  constructor(readonly bundled: MeshBundle) {
    this.#served = { mesh: this.#compile(bundled), revision: -1, configRevision: 0 };
  }

  get served(): ServedMesh {
    return this.#served;
  }

  /** The mesh to serve this request with. */
  async get(env: Record<string, unknown>, waitUntil: (p: Promise<unknown>) => void): Promise<ServedMesh> {
    const kv = env.MESH_KV as KVNamespace | undefined;
    if (!kv) return this.#served;
    const now = Date.now();
    const every = (this.#served.mesh.registry.refreshInterval ?? DEFAULT_REFRESH_S) * 1000;
    if (!this.#loaded) {
      // A fresh isolate serves what is applied, not the build's routes, if KV answers quickly;
      // requests arriving meanwhile wait for the same load.
      if (!this.#firstLoad) {
        this.#lastCheck = now;
        this.#firstLoad = Promise.race([
          this.#refresh(kv),
          new Promise((r) => setTimeout(r, FIRST_LOAD_TIMEOUT_MS)),
        ]).finally(() => {
          this.#loaded = true;
        });
      }
      await this.#firstLoad;
    } else if (now - this.#lastCheck >= every) {
      this.#lastCheck = now;
      waitUntil(this.#refresh(kv));
    }
    return this.#served;
  }

  #refresh(kv: KVNamespace): Promise<void> {
    this.#inflight ??= (async () => {
      try {
        const marker = await kv.get(SNAPSHOT_REVISION_KEY);
        if (marker === null || marker === `${this.#served.epoch}:${this.#served.revision}`) return;
        // The snapshot the marker names, under its own key: KV's per-location cache cannot hand
        // back an older snapshot under a newer marker.
        const snap = await kv.get<Snapshot>(snapshotKey(marker), 'json');
        // Never back to an older snapshot of the same registry; a new epoch (storage reset) starts over.
        if (snap && (snap.epoch !== this.#served.epoch || snap.revision > this.#served.revision)) this.apply(snap);
      } catch (e) {
        logEvent('warn', 'snapshot refresh failed; serving the last one', {
          revision: this.#served.revision,
          error: String((e as Error)?.message ?? e),
        });
      } finally {
        this.#inflight = undefined;
      }
    })();
    return this.#inflight;
  }

  /** Serves a snapshot (also used directly by tests). */
  apply(snap: Snapshot): void {
    const base = this.#compile(snap.bundle ?? this.bundled);
    this.#served = {
      mesh: withInstances(base, snap.instances),
      revision: snap.revision,
      epoch: snap.epoch,
      configRevision: snap.configRevision,
    };
  }

  /** Compiled once per config version; caches inside (verified tokens, leases) survive instance changes. */
  #compile(bundle: MeshBundle): CompiledMesh {
    let mesh = this.#compiled.get(bundle.version);
    if (!mesh) {
      mesh = compileMesh(bundle);
      this.#compiled.set(bundle.version, mesh);
      if (this.#compiled.size > MAX_COMPILED) this.#compiled.delete(this.#compiled.keys().next().value!);
    }
    return mesh;
  }
}

export function withInstances(base: CompiledMesh, instances: readonly Instance[]): CompiledMesh {
  if (instances.length === 0) return base;
  return {
    ...base,
    services: new Map([...base.services].map(([name, svc]) => [name, overlayService(svc, instances)])),
  };
}
