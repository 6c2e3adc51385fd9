/**
 * Weighted choice, precomputed at config load: relative weights, 0 means never chosen.
 * `random` is injectable so tests can pin the distribution exactly.
 */
export class WeightedPicker<T> {
  readonly #items: T[] = [];
  readonly #cumulative: number[] = [];
  readonly total: number;

  constructor(entries: ReadonlyArray<{ item: T; weight: number }>) {
    let total = 0;
    for (const { item, weight } of entries) {
      if (weight <= 0) continue;
      total += weight;
      this.#items.push(item);
      this.#cumulative.push(total);
    }
    this.total = total;
  }

  get size(): number {
    return this.#items.length;
  }

  /** undefined when every weight is 0 (or there is nothing to pick). */
  pick(random: () => number = Math.random): T | undefined {
    const n = this.#items.length;
    if (n <= 1) return this.#items[0];
    const x = random() * this.total;
    for (let i = 0; i < n; i++) if (x < this.#cumulative[i]!) return this.#items[i];
    return this.#items[n - 1];
  }
}
