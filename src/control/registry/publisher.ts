/**
 * Publishing snapshots to KV: the full snapshot under its own immutable key, then the small
 * marker every isolate polls. Publishes run one at a time (the two keys always come from the
 * same snapshot) and are coalesced to one per second (KV takes about one write per second per
 * key); a failed publish is retried. Each snapshot is signed with the gateway's mesh key
 * (registry/signature.ts): readers accept nothing else.
 */
import type { MeshBindings } from '../../core/bindings.ts';
import { errorText, logEvent } from '../../core/log.ts';
import { normalizeBundle } from '../../config/bundle.ts';
import { bundledConfig } from '../../generated/bundle.ts';
import { MeshKeys } from '../../identity/keys.ts';
import { signSnapshot } from '../../registry/signature.ts';
import { SNAPSHOT_KEY, SNAPSHOT_REVISION_KEY, snapshotKey, type Snapshot } from '../../registry/types.ts';

const PUBLISH_MIN_INTERVAL_MS = 1000;
/** Kept a day: long enough for any isolate that saw the marker to read it. */
const SNAPSHOT_TTL_S = 86_400;

export class Publisher {
  #last = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #chain: Promise<void> = Promise.resolve();

  /** The deployment's identity settings, not an applied config's: the signing key is the gateway's own. */
  readonly #keys = new MeshKeys(normalizeBundle(bundledConfig).config.identity);

  constructor(
    readonly kv: () => KVNamespace | undefined,
    readonly snapshot: () => Snapshot,
    readonly env: MeshBindings,
  ) {}

  /** A change happened: publish it within the coalescing window. */
  schedule(): void {
    if (this.#timer) return;
    const wait = Math.max(0, this.#last + PUBLISH_MIN_INTERVAL_MS - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#publish();
    }, wait);
  }

  /** Publishes every change so far now; the coalesced publish queued for them is not needed. */
  now(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    return this.#publish();
  }

  #publish(): Promise<void> {
    this.#chain = this.#chain.then(() => this.#write());
    return this.#chain;
  }

  async #write(): Promise<void> {
    const kv = this.kv();
    if (!kv) return;
    this.#last = Date.now();
    const snap = this.snapshot();
    try {
      // The full snapshot first, then the key isolates poll: nobody sees a revision whose
      // snapshot is not there yet.
      const marker = `${snap.epoch}:${snap.revision}`;
      const body = JSON.stringify(snap);
      const metadata = await signSnapshot(body, snap, await this.#keys.signer(this.env));
      await kv.put(snapshotKey(marker), body, { expirationTtl: SNAPSHOT_TTL_S, metadata });
      // The latest also under a fixed key, without expiry: readers fall back to it when the
      // per-revision key has expired (a mesh that did not change for a day).
      await kv.put(SNAPSHOT_KEY, body, { metadata });
      await kv.put(SNAPSHOT_REVISION_KEY, marker);
    } catch (e) {
      logEvent('error', 'registry publish failed', { revision: snap.revision, error: errorText(e) });
      this.schedule();
    }
  }
}
