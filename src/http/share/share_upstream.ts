/**
 * The TCP connection a share link's request opens inside the session: a
 * socket of the session's table (its socket quota, its listing; HTTP
 * send/recv answer EBUSY meanwhile), and a write helper that holds (and
 * charges) what waits for the send buffer.
 *
 * @module
 */

import { NetError } from "../../errors/net_error.ts";
import type { SocketEntry } from "../../socket/socket_entry.ts";
import type { TcpSocket } from "../../socket/tcp_socket.ts";
import type { TimerClock } from "../../socket/poll_deadline.ts";
import { HttpProblem } from "../problem.ts";
import type { Share } from "./share_registry.ts";

/** A connected upstream: its table entry and socket. */
export interface Upstream {
  /** The socket in the session's table. */
  entry: SocketEntry;
  /** The connection. */
  sock: TcpSocket;
  /** The session's clock. */
  clock: TimerClock;
  /** Writes all of `bytes`, waiting for send-buffer space; rejects when `signal` aborts. */
  write(bytes: Uint8Array, signal: AbortSignal): Promise<void>;
  /** Closes the socket: gracefully (FIN), or with a RST when `abort`. Idempotent. */
  close(abort: boolean): void;
}

/**
 * Opens a connection to the share's address and port, as a socket of its
 * session; failures become the API's problems (502 ECONNREFUSED or
 * EHOSTUNREACH, 504 ETIMEDOUT, 429 EMFILE when the socket quota is full).
 * `onDetach` runs when the socket is deleted under it (over HTTP, or the
 * session ended).
 *
 * @example
 * ```ts
 * const up = await openUpstream(share, 10_000, signal, () => ac.abort());
 * await up.write(head, signal);
 * ```
 */
export async function openUpstream(
  share: Share,
  timeoutMs: number,
  signal: AbortSignal,
  onDetach: () => void,
): Promise<Upstream> {
  const table = share.session.sockets;
  const entry = table.create("tcp");
  try {
    await table.connect(entry, {
      address: share.address,
      port: share.port,
      timeoutMs,
      signal,
    });
  } catch (err) {
    table.delete(entry.id, { abort: true });
    if (err instanceof NetError && err.code === "ECANCELED") throw err;
    if (err instanceof NetError) {
      const code = err.code === "ECONNRESET" ? "ECONNREFUSED" : err.code;
      const known = ["ECONNREFUSED", "ETIMEDOUT", "EHOSTUNREACH"].includes(code);
      throw new HttpProblem(
        known ? code as "ECONNREFUSED" : "ECONNREFUSED",
        `the share's target ${
          share.address.includes(":") ? `[${share.address}]` : share.address
        }:${share.port} inside the session: ${err.message}`,
      );
    }
    throw err;
  }
  const attachment = { detach: onDetach };
  const sock = table.attach(entry, attachment);
  let closed = false;
  return {
    entry,
    sock,
    clock: table.clock,
    async write(bytes, sig) {
      if (bytes.length === 0) return;
      const hold = table.holdBuffer(entry, bytes);
      try {
        let off = 0;
        for (;;) {
          const n = sock.trySend(off === 0 ? bytes : bytes.subarray(off));
          off += n;
          hold.taken(n);
          if (off >= bytes.length) return;
          await sock.waitWritable(sig);
        }
      } finally {
        hold.release();
      }
    },
    close(abort) {
      if (closed) return;
      closed = true;
      table.detach(entry, attachment);
      if (!entry.removed) table.delete(entry.id, { abort });
    },
  };
}
