/**
 * The entry point of the client SDK: a netisle server, from which sessions
 * are created or found again. Runtime-neutral (fetch and WebSocket only):
 * browsers, Deno, Bun, Node 20+ (with `ws`'s WebSocket on Node 20), workerd.
 *
 * @module
 */

import type { z } from "zod";
import type { CreateSessionBodySchema } from "../http/schemas.ts";
import type { CreatedSessionSchema } from "../http/session_routes.ts";
import { ApiTransport, type TransportOptions } from "./api_transport.ts";
import { NetisleSession } from "./netisle_session.ts";

/** Body of `POST /v1/sessions`: every field optional (the server's own schema). */
export type CreateSessionOptions = z.input<typeof CreateSessionBodySchema>;
/** What `POST /v1/sessions` answers: id, token, MAC, IPv4, MTU, tunnel URL. */
export type CreatedSession = z.output<typeof CreatedSessionSchema>;

/** Options of {@linkcode NetisleClient}. */
export interface NetisleClientOptions extends TransportOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:8787` or `https://netisle.example`. */
  server: string | URL;
  /** The admin token, when the server needs one to create sessions. */
  adminToken?: string;
}

/** A session just created: its handle and everything the server said about it. */
export interface NewSession extends NetisleSession {
  /** The server's answer (MAC, IPv4, MTU, tunnel URL). */
  readonly created: CreatedSession;
}

/**
 * A netisle server.
 *
 * @example
 * ```ts
 * const client = new NetisleClient({ server: "http://127.0.0.1:8787" });
 * const session = await client.createSession();
 * console.log(session.id, session.created.tunnel.url);
 * await session.delete();
 * ```
 */
export class NetisleClient {
  #t: ApiTransport;
  #adminToken: string | undefined;

  /** Checks the server URL (TypeError when it is not http(s)); makes no request. */
  constructor(options: NetisleClientOptions) {
    this.#t = new ApiTransport(options.server, options);
    this.#adminToken = options.adminToken;
  }

  /** The server's base URL. */
  get server(): URL {
    return this.#t.server;
  }

  /** Creates a session (EUNAUTHORIZED without the admin token the server wants, ENFILE when full). */
  async createSession(options: CreateSessionOptions = {}): Promise<NewSession> {
    const created = await this.#t.json<CreatedSession>("POST", "/v1/sessions", {
      token: this.#adminToken,
      json: options,
      what: "create a session",
    });
    const session = new NetisleSession(this.#t, created.id, created.token) as NetisleSession & {
      created: CreatedSession;
    };
    Object.defineProperty(session, "created", { value: created, enumerable: true });
    return session;
  }

  /** A handle on an existing session; no request is made (see {@linkcode NetisleClient.getSession}). */
  session(id: string, token: string): NetisleSession {
    return new NetisleSession(this.#t, id, token);
  }

  /** A handle on an existing session, checked with the server (ENOTFOUND, EUNAUTHORIZED). */
  async getSession(id: string, token: string): Promise<NetisleSession> {
    const s = new NetisleSession(this.#t, id, token);
    await s.info();
    return s;
  }
}
