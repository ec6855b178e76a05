/**
 * `GET /v1/sessions/:sid/pcap`: a live capture of a session's frames, both
 * ways, streamed as a classic pcap file that `tshark -r -` or Wireshark reads.
 *
 * The capture starts when the request arrives and ends when the client goes
 * away (the request's AbortSignal, or the response stream is cancelled), when
 * `maxFrames` frames were written, when `seconds` passed, or when the session
 * ends. A client that reads too slowly loses frames (its queue is bounded,
 * and charged to the session's memory quota) rather than holding up the
 * session. `HEAD` answers the headers without starting a capture.
 *
 * @module
 */

import { z } from "zod";
import type { CaptureSubscription, Session } from "../session/mod.ts";
import { encodePcapHeader, encodePcapRecords, type PcapPrecision } from "../wire/mod.ts";

/** Query of `GET /v1/sessions/:sid/pcap`. */
export const PcapQuerySchema = z.object({
  /** Stop after this many frames. */
  maxFrames: z.coerce.number().int().min(1).max(1_000_000_000).optional(),
  /** Stop after this many seconds (fractions allowed). */
  seconds: z.coerce.number().positive().max(86_400).optional(),
  /** Timestamp resolution: `us` (magic 0xa1b2c3d4, the default) or `ns` (0xa1b23c4d). */
  precision: z.enum(["us", "ns"]).optional(),
});

/** The parsed query of `GET /v1/sessions/:sid/pcap`. */
export type PcapQuery = z.infer<typeof PcapQuerySchema>;

/** Options of {@linkcode pcapStream}. */
export interface PcapStreamOptions {
  /** Stop after this many frames. */
  maxFrames?: number;
  /** Stop after this many seconds (on the session's clock). */
  seconds?: number;
  /** Timestamp resolution; default `us`. */
  precision?: PcapPrecision;
  /** Ends the capture when aborted (pass the request's signal). */
  signal?: AbortSignal;
  /**
   * Bound of the capture queue in bytes of storage (per frame its bytes and
   * a 16-byte record header, per 16 KiB chunk the per-buffer overhead);
   * default 4 MiB. The queue is charged to the session's memory quota too.
   */
  maxQueuedBytes?: number;
  /**
   * Answer a `HEAD` request: the same status and headers, no body, and no
   * capture (the stream would never be read, so it would never end).
   */
  head?: boolean;
  /** Called once when the capture ends, with what it wrote and dropped. */
  onEnd?: (stats: { frames: number; dropped: number }) => void;
}

/** Largest pcap chunk built from queued frames at once (keeps chunks bounded). */
const MAX_FRAMES_PER_CHUNK = 256;

/**
 * Subscribes to `session`'s capture tap now and returns the pcap file as a
 * byte stream: the header at once, then one record per frame. Throws NetError
 * EMFILE when the session already serves its maximum of captures.
 *
 * @example
 * ```ts
 * const body = pcapStream(session, { maxFrames: 100, signal: req.signal });
 * return new Response(body, { headers: { "content-type": "application/vnd.tcpdump.pcap" } });
 * ```
 */
export function pcapStream(
  session: Session,
  options: PcapStreamOptions = {},
): ReadableStream<Uint8Array> {
  const file = { snaplen: session.stack.maxFrameLen, precision: options.precision ?? "us" };
  const header = encodePcapHeader(file);
  let remaining = options.maxFrames ?? Infinity;
  let written = 0;
  // Subscribe now, not in start(): a full quota must fail the request, not the stream.
  const sub: CaptureSubscription = session.capture.subscribe({
    maxQueuedBytes: options.maxQueuedBytes,
  });
  const clock = session.clock;
  let timer: number | undefined;
  let ended = false;
  const signal = options.signal;
  const onAbort = () => sub.close();
  const finish = () => {
    if (ended) return;
    ended = true;
    if (timer !== undefined) clock.clearTimer(timer);
    signal?.removeEventListener("abort", onAbort);
    const dropped = sub.dropped;
    sub.discard();
    options.onEnd?.({ frames: written, dropped });
  };

  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (signal?.aborted) sub.close();
      signal?.addEventListener("abort", onAbort, { once: true });
      if (options.seconds !== undefined) {
        timer = clock.setTimer(clock.now() + options.seconds * 1000, () => {
          timer = undefined;
          sub.close();
        });
      }
      controller.enqueue(header);
    },
    async pull(controller) {
      for (;;) {
        if (remaining <= 0 || (sub.closed && sub.queuedFrames === 0)) {
          finish();
          controller.close();
          return;
        }
        const frames = sub.take(Math.min(remaining, MAX_FRAMES_PER_CHUNK));
        if (frames.length > 0) {
          remaining -= frames.length;
          written += frames.length;
          controller.enqueue(encodePcapRecords(frames, file));
          return;
        }
        await sub.wait();
      }
    },
    cancel() {
      finish();
    },
  }, { highWaterMark: 1 });
}

/**
 * The response of `GET /v1/sessions/:sid/pcap`: {@linkcode pcapStream} with
 * `application/vnd.tcpdump.pcap` and a download file name.
 *
 * @example
 * ```ts
 * app.get("/v1/sessions/:sid/pcap", auth, (c) => pcapResponse(session, { signal: c.req.raw.signal }));
 * ```
 */
export function pcapResponse(session: Session, options: PcapStreamOptions = {}): Response {
  const headers = {
    "content-type": "application/vnd.tcpdump.pcap",
    "content-disposition": `attachment; filename="${session.id}.pcap"`,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  };
  if (options.head) {
    session.capture.checkRoom();
    return new Response(null, { status: 200, headers });
  }
  return new Response(pcapStream(session, options), { status: 200, headers });
}
