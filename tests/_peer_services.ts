/**
 * Services that tests run on a peer stack (a second session joined to the one
 * under test): an upper-casing TCP echo.
 *
 * @module
 */

import type { Session } from "../src/session/mod.ts";
import { TcpServer, type TcpSocket } from "../src/socket/mod.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/**
 * An upper-casing echo server on `peer`'s `port`: answers each chunk with the
 * chunk upper-cased and shuts its side down at the client's EOF. Close the
 * returned server to stop accepting.
 */
export function upperEchoServer(peer: Session, port: number): TcpServer {
  const server = TcpServer.listen(peer, { port });
  (async () => {
    for (;;) {
      let s: TcpSocket;
      try {
        s = await server.accept();
      } catch {
        return;
      }
      (async () => {
        try {
          for (;;) {
            const c = await s.receive(65536);
            if (c === null) break;
            await s.write(enc(dec(c).toUpperCase()));
          }
          s.shutdown("write");
        } catch {
          // reset: nothing to answer
        }
      })();
    }
  })();
  return server;
}
