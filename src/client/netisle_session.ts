/**
 * One session as the SDK sees it: its id and token, and what a program does
 * with it — read or delete it, list its sockets, and open TCP connections,
 * listeners and UDP sockets inside its network.
 *
 * @module
 */

import type { z } from "zod";
import type { SessionViewSchema } from "../http/session_routes.ts";
import type {
  ConnectResultSchema,
  CreatedSocketSchema,
  ListenResultSchema,
  SocketListSchema,
} from "../http/socket_schemas.ts";
import type { ApiTransport } from "./api_transport.ts";
import { NetisleError } from "./netisle_error.ts";
import { NetisleListener } from "./netisle_listener.ts";
import {
  NetisleSocket,
  type SessionCredentials,
  type SocketAddress,
  type SocketOptions,
} from "./netisle_socket.ts";
import {
  joinHostPort,
  NetisleUdpSocket,
  splitHostPort,
  type UdpOptions,
} from "./netisle_udp_socket.ts";

/** `GET /v1/sessions/:sid`: addressing, tunnel state, counters, ARP cache, DHCP leases. */
export type SessionView = z.output<typeof SessionViewSchema>;
/** `GET /v1/sessions/:sid/sockets`. */
export type SocketList = z.output<typeof SocketListSchema>;

/** Options of `session.listen()`. */
export interface ListenOptions extends SocketOptions {
  /** The port on the stack (0 or absent: an ephemeral one). */
  port?: number;
  /** Most connections waiting to be accepted (the server's default 128). */
  backlog?: number;
}

/**
 * A session on a netisle server.
 *
 * @example
 * ```ts
 * const session = client.session(id, token);
 * const socket = session.connect({ hostname: "10.0.2.15", port: 22 });
 * console.log(await socket.opened);
 * ```
 */
export class NetisleSession implements SessionCredentials {
  /** The session id (`s_…`). */
  readonly id: string;
  /** The session's token. */
  readonly token: string;
  #t: ApiTransport;

  /** A handle on session `id` (no request is made); use `NetisleClient.session()`. */
  constructor(transport: ApiTransport, id: string, token: string) {
    this.#t = transport;
    this.id = id;
    this.token = token;
  }

  /** Reads the session: addressing, tunnel state, counters, ARP cache, leases. */
  info(): Promise<SessionView> {
    return this.#t.json("GET", this.#path(""), { token: this.token, what: `read ${this.id}` });
  }

  /** Deletes the session: every socket, the tunnel and the timers end. */
  async delete(): Promise<void> {
    await this.#t.request("DELETE", this.#path(""), {
      token: this.token,
      what: `delete ${this.id}`,
    });
  }

  /** The session's sockets, with the control blocks on each core list. */
  sockets(): Promise<SocketList> {
    return this.#t.json("GET", this.#path("/sockets"), {
      token: this.token,
      what: `list the sockets of ${this.id}`,
    });
  }

  /**
   * Opens a TCP connection from the stack to `address` (an IPv4 address on
   * the session's link, e.g. the tunnelled machine) and returns its socket at
   * once, as Cloudflare's `connect()` does: `opened` resolves when the
   * handshake is done and rejects with ECONNREFUSED, ETIMEDOUT,
   * EHOSTUNREACH, ...
   */
  connect(address: SocketAddress | string, options: SocketOptions = {}): NetisleSocket {
    const peer = typeof address === "string"
      ? splitHostPort(address)
      : { address: address.hostname, port: address.port };
    const what = `connect to ${joinHostPort(peer.address, peer.port)}`;
    return new NetisleSocket(this.#t, this, async () => {
      const id = await this.#createSocket("tcp", what);
      try {
        await this.#t.json<z.output<typeof ConnectResultSchema>>(
          "POST",
          this.#path(`/sockets/${id}/connect`),
          {
            token: this.token,
            json: { address: peer.address, port: peer.port, timeoutMs: options.timeoutMs },
            what,
          },
        );
      } catch (err) {
        await this.#deleteQuietly(id);
        throw err;
      }
      return id;
    }, options);
  }

  /**
   * Listens on a port of the stack (the tunnelled machine connects to the
   * stack's address, 10.0.2.2 by default). Rejects with EADDRINUSE when the
   * port is taken.
   */
  async listen(options: ListenOptions = {}): Promise<NetisleListener> {
    const what = `listen on port ${options.port ?? "(ephemeral)"}`;
    const id = await this.#createSocket("tcp", what);
    try {
      if (options.port) {
        await this.#t.request("POST", this.#path(`/sockets/${id}/bind`), {
          token: this.token,
          json: { port: options.port },
          what,
        });
      }
      const r = await this.#t.json<z.output<typeof ListenResultSchema>>(
        "POST",
        this.#path(`/sockets/${id}/listen`),
        { token: this.token, json: options.backlog ? { backlog: options.backlog } : {}, what },
      );
      return new NetisleListener(this.#t, this, id, r.local, options);
    } catch (err) {
      await this.#deleteQuietly(id);
      throw err;
    }
  }

  /**
   * Opens a UDP socket on the stack (on `port`, or an ephemeral one),
   * optionally connected to one peer.
   */
  async udp(options: UdpOptions = {}): Promise<NetisleUdpSocket> {
    const what = `open a UDP socket${options.port ? ` on port ${options.port}` : ""}`;
    const id = await this.#createSocket("udp", what);
    try {
      if (options.port) {
        await this.#t.request("POST", this.#path(`/sockets/${id}/bind`), {
          token: this.token,
          json: { port: options.port },
          what,
        });
      }
      if (options.remote !== undefined) {
        const r = typeof options.remote === "string"
          ? splitHostPort(options.remote)
          : { address: options.remote.hostname, port: options.remote.port };
        await this.#t.request("POST", this.#path(`/sockets/${id}/connect`), {
          token: this.token,
          json: r,
          what: `${what} connected to ${joinHostPort(r.address, r.port)}`,
        });
      }
      return await NetisleUdpSocket.open(this.#t, this, id, options.onError);
    } catch (err) {
      await this.#deleteQuietly(id);
      throw err;
    }
  }

  async #createSocket(protocol: "tcp" | "udp", what: string): Promise<string> {
    const created = await this.#t.json<z.output<typeof CreatedSocketSchema>>(
      "POST",
      this.#path("/sockets"),
      { token: this.token, json: { protocol }, what },
    );
    return created.id;
  }

  async #deleteQuietly(id: string): Promise<void> {
    try {
      await this.#t.request("DELETE", this.#path(`/sockets/${id}`), {
        token: this.token,
        what: "close the socket",
      });
    } catch (err) {
      // Best effort: the session's deletion or idle expiry reclaims it.
      if (!(err instanceof NetisleError)) throw err;
    }
  }

  #path(rest: string): string {
    return `/v1/sessions/${encodeURIComponent(this.id)}${rest}`;
  }
}
