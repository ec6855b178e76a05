/**
 * Standard input as an async iterable of byte chunks, for a consumer that is
 * done with each chunk before it asks for the next (the chunks may share one
 * buffer): Deno's own reads on Deno (stdin_deno.ts), `process.stdin` on Bun
 * and Node.
 *
 * @module
 */

import process from "node:process";
import { denoStdinChunks, hasDenoStdin } from "./stdin_deno.ts";

/** Bytes read from standard input at a time (on Deno). */
const READ_BYTES = 256 * 1024;

/**
 * Standard input's bytes, chunk by chunk; a chunk is valid until the next
 * one is asked for (on Deno every chunk is a view of one reused buffer).
 *
 * @example
 * ```ts ignore
 * for await (const chunk of stdinChunks()) await writer.write(chunk); // written before the next read
 * ```
 */
export function stdinChunks(): AsyncIterable<Uint8Array> {
  if (hasDenoStdin()) return denoStdinChunks(READ_BYTES);
  return process.stdin as AsyncIterable<Uint8Array>;
}
