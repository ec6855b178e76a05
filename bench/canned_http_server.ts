/**
 * A canned-response HTTP/1.1 server for the api bench's client ceiling: it
 * answers `GET /healthz`, `POST .../send` and `POST .../recv` with the bytes
 * netisle's server answers them with (status line, `content-type`, `date`,
 * `content-length`, the same bodies; a recv's body is `maxBytes` bytes, at
 * most 64), and does nothing else: no routing, no sessions, no sockets. The
 * rate the bench's `fetch` clients reach against it is what the clients
 * alone allow on this machine, so the ratio of its two rates bounds the
 * ratio netisle's server can show in the same run.
 *
 * Run as a child: `deno run -A bench/canned_http_server.ts` prints
 * `{"url": "http://127.0.0.1:PORT"}` once it listens.
 *
 * @module
 */

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const HEAD_END = encoder.encode("\r\n\r\n");
const DATE = new Date().toUTCString();
/** Largest body a recv answers with: the bench's echo payload. */
const MAX_RECV = 64;

function response(type: string, body: string): Uint8Array {
  return encoder.encode(
    `HTTP/1.1 200 OK\r\ncontent-type: ${type}\r\ndate: ${DATE}\r\n` +
      `content-length: ${body.length}\r\n\r\n${body}`,
  );
}

const HEALTHZ = response("application/json", '{"status":"ok","sessions":3}');
const SENT = response("application/json", '{"bytes":64}');
const RECEIVED = Array.from(
  { length: MAX_RECV + 1 },
  (_, n) => response("application/octet-stream", "x".repeat(n)),
);
const NOT_FOUND = encoder.encode("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");

/** Index of `HEAD_END` in `buf[0, end)`, or -1. */
function headEnd(buf: Uint8Array, end: number): number {
  outer: for (let i = 0; i + 4 <= end; i++) {
    for (let j = 0; j < 4; j++) if (buf[i + j] !== HEAD_END[j]) continue outer;
    return i;
  }
  return -1;
}

/** The canned answer to a request head (its text up to the blank line). */
function answerOf(head: string): Uint8Array {
  const line = head.slice(0, head.indexOf("\r\n"));
  const [method, target] = line.split(" ");
  if (method === "GET" && target === "/healthz") return HEALTHZ;
  if (method !== "POST") return NOT_FOUND;
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  if (path.endsWith("/send")) return SENT;
  if (path.endsWith("/recv")) {
    const m = /(?:^|&)maxBytes=(\d+)/.exec(q < 0 ? "" : target.slice(q + 1));
    return RECEIVED[Math.min(MAX_RECV, m ? Number(m[1]) : MAX_RECV)];
  }
  return NOT_FOUND;
}

/** Serves one connection: requests in order, each answered once its body is in. */
async function serveConn(conn: Deno.Conn): Promise<void> {
  let buf = new Uint8Array(64 * 1024);
  let end = 0;
  try {
    for (;;) {
      const at = headEnd(buf, end);
      if (at < 0) {
        if (end === buf.length) {
          const bigger = new Uint8Array(buf.length * 2);
          bigger.set(buf);
          buf = bigger;
        }
        const n = await conn.read(buf.subarray(end));
        if (n === null) return;
        end += n;
        continue;
      }
      const head = latin1.decode(buf.subarray(0, at));
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const total = at + 4 + (cl ? Number(cl[1]) : 0);
      while (end < total) {
        if (total > buf.length) {
          const bigger = new Uint8Array(total);
          bigger.set(buf.subarray(0, end));
          buf = bigger;
        }
        const n = await conn.read(buf.subarray(end));
        if (n === null) return;
        end += n;
      }
      const answer = answerOf(head);
      for (let off = 0; off < answer.length;) off += await conn.write(answer.subarray(off));
      buf.copyWithin(0, total, end);
      end -= total;
    }
  } catch {
    // The client went away.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** A running canned server. */
export interface CannedServer {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Stops accepting and closes the connections it serves. */
  close(): void;
}

/**
 * Serves canned answers on an ephemeral loopback port.
 *
 * @example
 * ```ts ignore
 * const server = serveCanned();
 * await (await fetch(`${server.url}/healthz`)).text(); // '{"status":"ok","sessions":3}'
 * server.close();
 * ```
 */
export function serveCanned(): CannedServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    try {
      for await (const conn of listener) {
        conn.setNoDelay(true);
        conns.add(conn);
        void serveConn(conn).finally(() => conns.delete(conn));
      }
    } catch {
      // Closed.
    }
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    close: () => {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    },
  };
}

if (import.meta.main) console.log(JSON.stringify({ url: serveCanned().url }));
