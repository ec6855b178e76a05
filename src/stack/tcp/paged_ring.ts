/**
 * Storage of the TCP core's out-of-order bytes: a ring of fixed-size pages
 * that are allocated only where bytes are held and charged to the session's
 * memory quota, so that scattered segments cost about what they carry and a
 * connection that reorders nothing holds no storage.
 *
 * @module
 */

import { bufferCost, MemoryQuota } from "../session_quota.ts";

/** Bytes of one page unless told otherwise. */
export const DEFAULT_PAGE_BYTES = 4096;

/**
 * Bytes one slot of a page table is counted at (a pointer): the table of a
 * ring of n pages costs `bufferCost(n * PAGE_TABLE_SLOT_BYTES)`.
 */
export const PAGE_TABLE_SLOT_BYTES = 8;

/**
 * What the page table of a ring of `pages` pages is charged while it
 * exists: a slot per page.
 *
 * @example
 * ```ts
 * pageTableCost(1024); // bufferCost(8192): a 4 MiB ring in 4 KiB pages
 * ```
 */
export function pageTableCost(pages: number): number {
  return bufferCost(pages * PAGE_TABLE_SLOT_BYTES);
}

/** The page table of a ring that holds nothing (shared: never written). */
const NO_PAGES: ReadonlyArray<Uint8Array | undefined> = Object.freeze([]);

/**
 * A ring of `size` bytes addressed by index, stored in pages of `pageBytes`
 * allocated on demand. Every page costs `bufferCost(pageBytes)` of the
 * quota from its allocation to its release.
 *
 * @example
 * ```ts
 * const ring = new PagedRing(65536, 4096, new MemoryQuota(1 << 20));
 * if (ring.reserve(100, 3)) ring.write(100, new Uint8Array([1, 2, 3]));
 * ring.chargedBytes; // bufferCost(4096) + pageTableCost(16): one page holds them
 * ring.read(100, 3, (view) => console.log(view)); // Uint8Array [1, 2, 3]
 * ring.releaseSpan(100, 3, -1, -1); // the bytes left: the page is freed and released
 * ```
 */
export class PagedRing {
  /** Ring length in bytes: a whole number of pages. */
  readonly size: number;
  readonly #pageBytes: number;
  readonly #shift: number;
  /** Pages in the ring. */
  readonly #count: number;
  /**
   * The page table, made when the first page is allocated and dropped when
   * the last is freed (charged meanwhile, as the pages are): an idle
   * connection's ring (4 MiB in 4 KiB pages) would otherwise hold a
   * 1,024-slot table, 8 KiB of heap, for nothing.
   */
  #pages: Array<Uint8Array | undefined> | ReadonlyArray<Uint8Array | undefined> = NO_PAGES;
  readonly #quota: MemoryQuota;
  #allocated = 0;

  /**
   * Creates an empty ring of at least `minSize` bytes in pages of
   * `pageBytes` (a power of two), charging `quota`.
   *
   * @throws {RangeError} when `pageBytes` is not a power of two or `minSize` not positive.
   */
  constructor(minSize: number, pageBytes: number, quota: MemoryQuota) {
    if (!Number.isSafeInteger(pageBytes) || pageBytes <= 0 || (pageBytes & (pageBytes - 1)) !== 0) {
      throw new RangeError(`PagedRing: pageBytes must be a power of two, got ${pageBytes}`);
    }
    if (!Number.isSafeInteger(minSize) || minSize <= 0) {
      throw new RangeError(`PagedRing: size must be a positive integer, got ${minSize}`);
    }
    const count = Math.ceil(minSize / pageBytes);
    this.size = count * pageBytes;
    this.#pageBytes = pageBytes;
    this.#shift = Math.log2(pageBytes);
    this.#count = count;
    this.#quota = quota;
  }

  /** Bytes of one page. */
  get pageBytes(): number {
    return this.#pageBytes;
  }

  /** Bytes of storage charged now: the cost of every allocated page and of the page table. */
  get chargedBytes(): number {
    if (this.#allocated === 0) return 0;
    return this.#allocated * bufferCost(this.#pageBytes) + this.#tableCost();
  }

  /** Pages allocated now. */
  get pageCount(): number {
    return this.#allocated;
  }

  /**
   * Makes sure pages cover ring indices `[idx, idx + len)` (wrapping),
   * charging the quota for the new ones. All or nothing: returns false, and
   * allocates nothing, when the quota refuses.
   */
  reserve(idx: number, len: number): boolean {
    if (len <= 0) return true;
    let missing = 0;
    this.#forPages(idx, len, (p) => {
      if (this.#pages[p] === undefined) missing++;
    });
    if (missing === 0) return true;
    const table = this.#pages === NO_PAGES ? this.#tableCost() : 0;
    if (!this.#quota.tryCharge(missing * bufferCost(this.#pageBytes) + table)) return false;
    const pages = this.#pages === NO_PAGES
      ? (this.#pages = new Array<Uint8Array | undefined>(this.#count).fill(undefined))
      : this.#pages as Array<Uint8Array | undefined>;
    this.#forPages(idx, len, (p) => {
      if (pages[p] === undefined) {
        pages[p] = new Uint8Array(this.#pageBytes);
        this.#allocated++;
      }
    });
    return true;
  }

  /** Copies `bytes` to ring index `idx` onwards (wrapping); the pages must be reserved. */
  write(idx: number, bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const p = idx >>> this.#shift;
      const off = idx & (this.#pageBytes - 1);
      const n = Math.min(this.#pageBytes - off, bytes.length - done);
      this.#pages[p]!.set(bytes.subarray(done, done + n), off);
      done += n;
      idx += n;
      if (idx >= this.size) idx -= this.size;
    }
  }

  /**
   * Hands the bytes at `[idx, idx + len)` to `sink` as one view per page
   * touched, in order; each view is valid only during its call.
   */
  read(idx: number, len: number, sink: (view: Uint8Array) => void): void {
    while (len > 0) {
      const p = idx >>> this.#shift;
      const off = idx & (this.#pageBytes - 1);
      const n = Math.min(this.#pageBytes - off, len);
      sink(this.#pages[p]!.subarray(off, off + n));
      len -= n;
      idx += n;
      if (idx >= this.size) idx -= this.size;
    }
  }

  /**
   * Frees the allocated pages under `[idx, idx + len)` (bytes that left the
   * ring) except the pages holding indices `keepA` and `keepB` (pass -1 for
   * none): pages at the span's edges may still hold other bytes. Releases
   * their charge.
   */
  releaseSpan(idx: number, len: number, keepA: number, keepB: number): void {
    if (this.#allocated === 0) return;
    const a = keepA < 0 ? -1 : keepA >>> this.#shift;
    const b = keepB < 0 ? -1 : keepB >>> this.#shift;
    let freed = 0;
    const pages = this.#pages as Array<Uint8Array | undefined>;
    this.#forPages(idx, len, (p) => {
      if (p !== a && p !== b && pages[p] !== undefined) {
        pages[p] = undefined;
        freed++;
      }
    });
    this.#release(freed);
  }

  /** Frees every page. */
  clear(): void {
    if (this.#allocated === 0) return;
    this.#release(this.#allocated);
  }

  #release(pages: number): void {
    if (pages === 0) return;
    this.#allocated -= pages;
    let bytes = pages * bufferCost(this.#pageBytes);
    if (this.#allocated === 0) {
      bytes += this.#tableCost();
      this.#pages = NO_PAGES;
    }
    this.#quota.release(bytes);
  }

  /** What the page table costs while it exists. */
  #tableCost(): number {
    return pageTableCost(this.#count);
  }

  /** Calls `f` for each page under ring `[idx, idx + len)`, wrapping, each once. */
  #forPages(idx: number, len: number, f: (page: number) => void): void {
    if (len <= 0) return;
    const count = this.#count;
    const first = idx >>> this.#shift;
    const last = ((idx + len - 1) % this.size) >>> this.#shift;
    let n = last - first + 1;
    if (n <= 0 || len > this.size - this.#pageBytes) n += count;
    if (n > count) n = count;
    for (let i = 0, p = first; i < n; i++) {
      f(p);
      if (++p === count) p = 0;
    }
  }
}
