/**
 * A request body as the app reads it: a `ReadableStream` (high-water mark 0)
 * that takes bytes from the connection's {@linkcode ReadBuffer} only when the
 * app pulls, framed by Content-Length or the chunked coding
 * (`http1_chunked_decoder.ts`). Each chunk is a copy of its size. `Expect:
 * 100-continue` is answered at the first pull (RFC 9110 §10.1.1). A framing
 * error fails the stream and is kept in `error` (the engine answers 400 in
 * place of the app's response). A body the app leaves unread can be dropped
 * when its rest is already buffered (`skip`). A small body of a declared
 * length can instead be read whole into one buffer of its size (`whole`: the
 * app's `arrayBuffer()`, without a stream).
 *
 * Runtime-neutral.
 *
 * @module
 */

import type { ReadBuffer } from "./read_buffer.ts";
import type { RequestHead } from "./http1_head_parser.ts";
import { ChunkedDecoder } from "./http1_chunked_decoder.ts";
import type { IncomingBody } from "./incoming_request.ts";

/** A body of a declared length up to this size can be read whole ({@linkcode RequestBody.whole}). */
export const WHOLE_BODY_BYTES = 64 * 1024;

/** What a body needs from its connection. */
export interface BodyHost {
  /** The connection's read side. */
  readonly input: ReadBuffer;
  /** Bytes the read buffer may grow to while a body streams in. */
  readonly maxBufferBytes: number;
  /** The connection still serves the request (not closing). */
  serving(): boolean;
  /** Writes `100 Continue`. */
  sendContinue(): Promise<void>;
  /** The app started reading the body. */
  pulled(): void;
  /** The body is all in, or dropped: its deadline ends. */
  ended(): void;
}

/**
 * The body of the request in progress on one connection (reused per request).
 *
 * @example
 * ```ts
 * const body = new RequestBody(host);
 * if (body.begin(head)) req = new Request(url, { method, body: body.stream(), duplex: "half" });
 * ```
 */
export class RequestBody implements IncomingBody {
  /** Bytes of the body are still to come. */
  open = false;
  /** What was wrong with its framing, once it failed. */
  error: string | undefined;
  readonly #host: BodyHost;
  #left = 0;
  #chunked: ChunkedDecoder | undefined;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #expectContinue = false;
  /** The body was handed out (a stream or a whole read). */
  #taken = false;
  /** Rejects the whole read in progress (the body failed). */
  #failWhole: ((err: Error) => void) | undefined;
  /** Why the body failed (a stream made after that fails at once). */
  #failure: string | undefined;

  /** The body reader of a connection. */
  constructor(host: BodyHost) {
    this.#host = host;
  }

  /** Starts the body of `head`; false when it has none. */
  begin(head: RequestHead): boolean {
    const has = head.chunked || head.contentLength > 0;
    this.open = has;
    this.error = undefined;
    this.#left = head.chunked ? -1 : has ? head.contentLength : 0;
    this.#chunked = head.chunked ? new ChunkedDecoder() : undefined;
    this.#controller = undefined;
    this.#expectContinue = head.expectContinue && has;
    this.#taken = false;
    this.#failWhole = undefined;
    this.#failure = undefined;
    return has;
  }

  /** The stream the app reads (one per body). */
  stream(): ReadableStream<Uint8Array> {
    this.#taken = true;
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        if (this.#failure !== undefined) controller.error(new TypeError(this.#failure));
        else if (!this.open) controller.close();
        else this.#controller = controller;
      },
      pull: (controller) => this.#pull(controller),
    }, { highWaterMark: 0 });
  }

  /**
   * The whole body in a new buffer of exactly its size, read as the stream
   * would read it (100-continue, the deadline, a connection that closes
   * first fails it with a `TypeError`); undefined, and nothing read, unless
   * the body has a declared length of at most {@linkcode WHOLE_BODY_BYTES}
   * and was not handed out yet.
   */
  whole(): Promise<Uint8Array> | undefined {
    if (this.#taken || this.#chunked !== undefined || this.#left > WHOLE_BODY_BYTES) {
      return undefined;
    }
    if (this.#failure !== undefined) {
      this.#taken = true;
      return Promise.reject(new TypeError(this.#failure));
    }
    if (!this.open) return undefined;
    this.#taken = true;
    return this.#readWhole(new Uint8Array(this.#left));
  }

  /**
   * The whole body in a new buffer of exactly its size when all of it is in
   * the read buffer already (no read, no `100 Continue` needed), else
   * undefined and nothing read; only before the body was handed out.
   */
  buffered(): Uint8Array | undefined {
    if (this.#taken || this.#chunked !== undefined || !this.open) return undefined;
    const input = this.#host.input;
    const left = this.#left;
    if (left > WHOLE_BODY_BYTES || input.reading || input.end - input.start < left) {
      return undefined;
    }
    this.#taken = true;
    this.#expectContinue = false;
    this.#host.pulled();
    const out = input.buf.slice(input.start, input.start + left);
    input.start += left;
    this.#left = 0;
    this.#done();
    return out;
  }

  async #readWhole(out: Uint8Array): Promise<Uint8Array> {
    const host = this.#host;
    const input = host.input;
    let failed!: (err: Error) => void;
    const failure = new Promise<never>((_, reject) => failed = reject);
    failure.catch(() => {});
    this.#failWhole = failed;
    host.pulled();
    if (this.#expectContinue) {
      this.#expectContinue = false;
      if (input.start === input.end && host.serving()) await host.sendContinue();
    }
    let at = 0;
    for (;;) {
      if (!this.open) throw new TypeError(this.#failure ?? "the request body failed");
      const take = Math.min(this.#left, input.end - input.start);
      if (take > 0) {
        out.set(input.buf.subarray(input.start, input.start + take), at);
        at += take;
        input.start += take;
        this.#left -= take;
      }
      if (this.#left === 0) {
        this.#failWhole = undefined;
        this.#done();
        return out;
      }
      if (input.eof || !host.serving()) {
        this.fail("the connection closed before the request body ended");
        throw new TypeError("the connection closed before the request body ended");
      }
      if (!input.reading) input.makeRoom(host.maxBufferBytes);
      await Promise.race([input.fill(), failure]);
    }
  }

  /** Fails the stream (a timeout, the connection closing); the body is no longer open. */
  fail(message: string): void {
    this.open = false;
    this.#failure ??= message;
    const whole = this.#failWhole;
    this.#failWhole = undefined;
    whole?.(new TypeError(message));
    const c = this.#controller;
    this.#controller = undefined;
    try {
      c?.error(new TypeError(message));
    } catch {
      // Closed already.
    }
  }

  /** Drops the rest of a body the app did not read, when it is all buffered; false if not. */
  skip(): boolean {
    const input = this.#host.input;
    if (input.reading) return false;
    const d = this.#chunked;
    if (d !== undefined) {
      while (!d.done && d.error === undefined && input.start < input.end) {
        input.start += d.decode(input.buf, input.start, input.end);
      }
      if (!d.done) return false;
    } else {
      if (input.end - input.start < this.#left) return false;
      input.start += this.#left;
      this.#left = 0;
    }
    this.#done();
    this.fail("the request body was dropped: the response was sent first");
    return true;
  }

  async #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    const host = this.#host;
    const input = host.input;
    host.pulled();
    if (this.#expectContinue) {
      this.#expectContinue = false;
      if (input.start === input.end && host.serving()) await host.sendContinue();
    }
    for (;;) {
      if (controller !== this.#controller || !this.open) return;
      if (input.start < input.end) {
        const chunk = this.#take();
        if (this.error !== undefined) {
          this.#controller = undefined;
          controller.error(new TypeError(`malformed request body: ${this.error}`));
          return;
        }
        if (chunk !== undefined) controller.enqueue(chunk);
        if (!this.open) {
          this.#controller = undefined;
          controller.close();
          return;
        }
        if (chunk !== undefined) return;
      }
      if (input.eof || !host.serving()) {
        this.fail("the connection closed before the request body ended");
        return;
      }
      if (!input.reading) input.makeRoom(host.maxBufferBytes);
      await input.fill();
    }
  }

  /** Takes buffered body bytes (a copy), updating the framing; undefined when none were data. */
  #take(): Uint8Array | undefined {
    const input = this.#host.input;
    const buf = input.buf;
    const d = this.#chunked;
    if (d !== undefined) {
      while (input.start < input.end) {
        input.start += d.decode(buf, input.start, input.end);
        if (d.error !== undefined) {
          this.error = d.error;
          this.open = false;
          return undefined;
        }
        if (d.dataEnd > d.dataStart) {
          const chunk = buf.slice(d.dataStart, d.dataEnd);
          if (d.done) this.#done();
          return chunk;
        }
        if (d.done) {
          this.#done();
          return undefined;
        }
      }
      return undefined;
    }
    const take = Math.min(this.#left, input.end - input.start);
    const chunk = buf.slice(input.start, input.start + take);
    input.start += take;
    this.#left -= take;
    if (this.#left === 0) this.#done();
    return chunk;
  }

  #done(): void {
    this.open = false;
    this.#host.ended();
  }
}
