/**
 * Standard input on Deno, read with `Deno.stdin.read` into one buffer that
 * is used again for every read: Node's `process.stdin` under Deno's Node
 * layer costs about twice the CPU per byte and a fresh buffer per chunk.
 * The thin runtime adapter behind {@linkcode stdinChunks}.
 *
 * @module
 */

/** Whether `Deno.stdin` can be read here (Deno, not Bun or Node). */
export function hasDenoStdin(): boolean {
  const d = (globalThis as { Deno?: { stdin?: { read?: unknown } } }).Deno;
  return typeof d?.stdin?.read === "function";
}

/**
 * Yields what standard input delivers, each chunk a view of one buffer of
 * `bufferBytes` that the next step overwrites; ends at end of input.
 *
 * @example
 * ```ts ignore
 * for await (const chunk of denoStdinChunks(1 << 18)) await sink(chunk);
 * ```
 */
export async function* denoStdinChunks(bufferBytes: number): AsyncGenerator<Uint8Array> {
  const buf = new Uint8Array(bufferBytes);
  for (;;) {
    const n = await Deno.stdin.read(buf);
    if (n === null) return;
    if (n > 0) yield buf.subarray(0, n);
  }
}
