/**
 * A bounded cache with per-entry expiry. Least recently used entries go first when full.
 * A Map keeps insertion order, so re-inserting on a hit is the whole LRU bookkeeping.
 */
export class LruCache<V> {
  readonly #entries = new Map<string, { value: V; expiresAt: number }>();
  #max: number;

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  get maxEntries(): number {
    return this.#max;
  }

  get(key: string, now = Date.now()): V | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    this.#entries.delete(key);
    if (e.expiresAt <= now) return undefined;
    this.#entries.set(key, e);
    return e.value;
  }

  set(key: string, value: V, expiresAt: number): void {
    if (this.#max <= 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt });
    this.#evict();
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** A new config may change the bound: entries beyond it go, least recently used first. */
  resize(maxEntries: number): void {
    this.#max = maxEntries;
    this.#evict();
  }

  #evict(): void {
    while (this.#entries.size > Math.max(0, this.#max)) this.#entries.delete(this.#entries.keys().next().value!);
  }
}
