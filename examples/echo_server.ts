/**
 * A TCP echo server (RFC 862) running on a session's stack: every byte a
 * client sends comes back; the client's FIN ends the echo.
 *
 * @module
 */

import { type CoreAccess, TcpServer, type TcpSocket } from "../src/socket/mod.ts";

/**
 * Serves echo on `port` until `signal` aborts. Returns the listening server.
 *
 * @example
 * ```ts
 * serveEcho(session, 7);
 * ```
 */
export function serveEcho(core: CoreAccess, port = 7, signal?: AbortSignal): TcpServer {
  const server = TcpServer.listen(core, { port, backlog: 256 });
  server.serve(echo, signal);
  return server;
}

async function echo(sock: TcpSocket): Promise<void> {
  try {
    for (;;) {
      const chunk = await sock.receive(64 * 1024);
      if (chunk === null) break;
      await sock.write(chunk);
    }
    sock.shutdown("write");
  } catch {
    sock.abort();
  }
}
