/**
 * A binary min-heap of entries keyed by a deadline: the structure that lets
 * a core with thousands of timers find the earliest in O(1) and move one in
 * O(log n), so that the work of a core entry grows with the timers that
 * changed, not with the number of timers.
 *
 * Entries carry their own position (`heapIndex`, -1 when outside the heap)
 * and key (`heapKey`), so that the heap allocates nothing after it has
 * grown to its largest size.
 *
 * @module
 */

/** What the heap stores: an object that keeps its own position and key. */
export interface DeadlineEntry {
  /** Position in the heap's array, -1 when not in a heap. */
  heapIndex: number;
  /** The deadline it is ordered by (ms of the core's clock). */
  heapKey: number;
}

/**
 * A min-heap of {@linkcode DeadlineEntry}s by `heapKey`.
 *
 * @example
 * ```ts
 * const heap = new DeadlineHeap<DeadlineEntry>();
 * const a = { heapIndex: -1, heapKey: 0 };
 * const b = { heapIndex: -1, heapKey: 0 };
 * heap.set(a, 200);
 * heap.set(b, 100);
 * heap.peek() === b; // true
 * heap.set(b, 300); // moved later: a is first now
 * heap.delete(a);
 * heap.size; // 1
 * ```
 */
export class DeadlineHeap<T extends DeadlineEntry> {
  #items: T[] = [];

  /** Number of entries. */
  get size(): number {
    return this.#items.length;
  }

  /** The entry with the earliest key, or undefined when empty. */
  peek(): T | undefined {
    return this.#items[0];
  }

  /** Inserts `entry` with key `key`, or moves it there if it is in the heap already. */
  set(entry: T, key: number): void {
    const i = entry.heapIndex;
    if (i < 0) {
      entry.heapKey = key;
      entry.heapIndex = this.#items.length;
      this.#items.push(entry);
      this.#up(entry.heapIndex);
      return;
    }
    const old = entry.heapKey;
    entry.heapKey = key;
    if (key < old) this.#up(i);
    else if (key > old) this.#down(i);
  }

  /** Removes `entry` if it is in the heap. */
  delete(entry: T): void {
    const i = entry.heapIndex;
    if (i < 0) return;
    const items = this.#items;
    const last = items.pop()!;
    entry.heapIndex = -1;
    if (last === entry) return;
    items[i] = last;
    last.heapIndex = i;
    this.#up(i);
    this.#down(last.heapIndex);
  }

  /** Removes every entry. */
  clear(): void {
    for (const e of this.#items) e.heapIndex = -1;
    this.#items = [];
  }

  #up(i: number): void {
    const items = this.#items;
    const e = items[i];
    const key = e.heapKey;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = items[p];
      if (parent.heapKey <= key) break;
      items[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    items[i] = e;
    e.heapIndex = i;
  }

  #down(i: number): void {
    const items = this.#items;
    const n = items.length;
    const e = items[i];
    const key = e.heapKey;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && items[c + 1].heapKey < items[c].heapKey) c++;
      const child = items[c];
      if (child.heapKey >= key) break;
      items[i] = child;
      child.heapIndex = i;
      i = c;
    }
    items[i] = e;
    e.heapIndex = i;
  }
}
