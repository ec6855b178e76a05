/**
 * Responses whose body is a few bytes known when they are made (a send's
 * JSON answer, a recv's data): {@linkcode fixedResponse} makes one and
 * remembers its bytes, so that this project's HTTP/1.1 engine writes them
 * after the head at once ({@linkcode fixedBody}) instead of reading them back
 * through the `Response`'s stream, which a runtime makes on first use of
 * `body` (on Deno that stream, its reader and two reads cost more than the
 * rest of writing a small response). Other servers read the `Response` as
 * usual: it is an ordinary one, with the same bytes.
 *
 * Runtime-neutral.
 *
 * @module
 */

const bodies = new WeakMap<Response, Uint8Array>();
const encoder = new TextEncoder();

/**
 * A `Response` of `body` (a string is UTF-8) and `init`, its bytes
 * remembered for {@linkcode fixedBody}. `body` must not change afterwards.
 *
 * @example
 * ```ts
 * fixedResponse('{"bytes":64}', { status: 200, headers: { "content-type": "application/json" } });
 * ```
 */
export function fixedResponse(body: Uint8Array | string, init: ResponseInit): Response {
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const res = new Response(bytes as Uint8Array<ArrayBuffer>, init);
  bodies.set(res, bytes);
  return res;
}

/**
 * The bytes of a response {@linkcode fixedResponse} made, or undefined for
 * any other (or one whose body was read since).
 *
 * @example
 * ```ts
 * const bytes = fixedBody(res) ?? new Uint8Array(await res.arrayBuffer());
 * ```
 */
export function fixedBody(res: Response): Uint8Array | undefined {
  const bytes = bodies.get(res);
  return bytes === undefined || res.bodyUsed ? undefined : bytes;
}
