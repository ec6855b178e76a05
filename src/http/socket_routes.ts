/**
 * The socket routes of the HTTP API (`/v1/sessions/:sid/sockets...`) as a
 * route table: sockets inside a session's network for any HTTP client.
 * Each handler is thin; the session's {@linkcode SocketTable} does the work.
 *
 * @module
 */

import type { Context } from "hono";
import type { Session } from "../session/mod.ts";
import type { SocketEntry } from "../socket/socket_table.ts";
import type { WebSocketUpgrader } from "./app.ts";
import { HttpProblem } from "./problem.ts";
import { type AnyRoute, type AppEnv, defineRoute } from "./route_table.ts";
import { openSocketStream, type SocketStreamOptions } from "./socket_stream.ts";
import { selectStreamSubprotocol } from "./socket_stream_protocol.ts";
import { openStreamV1 } from "./socket_stream_v1.ts";
import { openUdpStream } from "./udp_stream.ts";
import {
  AcceptBodySchema,
  AcceptResultSchema,
  BindBodySchema,
  BindResultSchema,
  ConnectBodySchema,
  ConnectResultSchema,
  CreatedSocketSchema,
  CreateSocketBodySchema,
  DEFAULT_RECV_BYTES,
  DeleteSocketQuerySchema,
  ListenBodySchema,
  ListenResultSchema,
  RecvQuerySchema,
  SendQuerySchema,
  SendResultSchema,
  SessionOnlyParamsSchema,
  ShutdownBodySchema,
  SocketDetailsSchema,
  SocketListSchema,
  SocketParamsSchema,
  SocketViewSchema,
  StreamQuerySchema,
} from "./socket_schemas.ts";

/** Largest body of `POST .../send` (1 MiB). */
export const MAX_SEND_BODY_BYTES = 1024 * 1024;

/** Response header of a recv at the end of the stream. */
export const EOF_HEADER = "Netisle-Eof";
/** Response header of a UDP recv: the sender's address. */
export const PEER_ADDRESS_HEADER = "Netisle-Peer-Address";
/** Response header of a UDP recv: the sender's port. */
export const PEER_PORT_HEADER = "Netisle-Peer-Port";
/** Response header of a UDP recv whose datagram was longer than `maxBytes`. */
export const TRUNCATED_HEADER = "Netisle-Truncated";

/** Options of {@linkcode socketRoutes}. */
export interface SocketRouteOptions {
  /** The runtime's WebSocket upgrade; without it the stream route answers 501. */
  upgradeWebSocket?: WebSocketUpgrader;
  /** Tuning of WebSocket streams. */
  stream?: SocketStreamOptions;
}

const SOCKETS = "/v1/sessions/:sid/sockets";
const SOCKET = `${SOCKETS}/:id`;
const TAGS = ["sockets"];

function socketOf(c: Context<AppEnv>, id: string): SocketEntry {
  const session: Session = c.get("session");
  const entry = session.sockets.get(id);
  if (!entry) {
    throw new HttpProblem("ENOTFOUND", `no socket with id "${id}" in session "${session.id}"`);
  }
  return entry;
}

/**
 * The socket routes.
 *
 * @example
 * ```ts
 * registerRoutes(app, socketRoutes({ upgradeWebSocket }), ctx);
 * ```
 */
export function socketRoutes(options: SocketRouteOptions = {}): AnyRoute[] {
  return [
    defineRoute({
      operationId: "listSockets",
      method: "GET",
      path: SOCKETS,
      summary: "List the session's sockets",
      description: "State, control-block list, local and remote endpoints and queue sizes of " +
        "every socket, and the number of control blocks on each core list.",
      tags: TAGS,
      auth: "session",
      params: SessionOnlyParamsSchema,
      responses: { 200: { description: "The sockets.", json: SocketListSchema } },
      errors: [],
      handler: (c) => {
        const session = c.get("session");
        const table = session.sockets;
        const pcbs = session.withCore((stack) => {
          let bound = 0;
          for (const n of stack.tcp.bound.values()) bound += n;
          return {
            bound,
            listen: stack.tcp.listeners.size,
            active: stack.tcp.active.size,
            timeWait: stack.tcp.timeWait.size,
            udp: stack.udp.endpoints.size,
          };
        });
        return c.json({
          sockets: table.list(),
          pcbs,
          bufferedBytes: table.bufferedBytes(),
          limits: { ...table.limits },
        });
      },
    }),
    defineRoute({
      operationId: "createSocket",
      method: "POST",
      path: SOCKETS,
      summary: "Create a socket",
      tags: TAGS,
      auth: "session",
      params: SessionOnlyParamsSchema,
      body: CreateSocketBodySchema,
      responses: {
        201: {
          description: "The new socket.",
          json: CreatedSocketSchema,
          headers: { Location: "The socket's URL." },
        },
      },
      errors: ["EMFILE"],
      handler: (c, { params, body }) => {
        const entry = c.get("session").sockets.create(body.protocol);
        return c.json(
          { id: entry.id, protocol: entry.protocol, state: entry.state },
          201,
          { location: `/v1/sessions/${params.sid}/sockets/${entry.id}` },
        );
      },
    }),
    defineRoute({
      operationId: "getSocket",
      method: "GET",
      path: SOCKET,
      summary: "One socket's details",
      description: "The listing row plus, for a TCP connection, its estimates and counters " +
        "(rtt, rto, cwnd, windows, retransmits...), for a listener its queues, for UDP its counters.",
      tags: TAGS,
      auth: "session",
      params: SocketParamsSchema,
      responses: { 200: { description: "The socket.", json: SocketDetailsSchema } },
      errors: [],
      handler: (c, { params }) => c.json(c.get("session").sockets.describe(socketOf(c, params.id))),
    }),
    defineRoute({
      operationId: "bindSocket",
      method: "POST",
      path: `${SOCKET}/bind`,
      summary: "Bind to a local port",
      description: "A bound TCP socket holds its port until it listens or connects from it.",
      tags: TAGS,
      auth: "session",
      params: SocketParamsSchema,
      body: BindBodySchema,
      responses: { 200: { description: "The local endpoint.", json: BindResultSchema } },
      errors: ["EADDRINUSE", "EALREADY", "EISCONN", "EMFILE"],
      handler: (c, { params, body }) => {
        const entry = socketOf(c, params.id);
        return c.json({ local: c.get("session").sockets.bind(entry, body) });
      },
    }),
    defineRoute({
      operationId: "listenSocket",
      method: "POST",
      path: `${SOCKET}/listen`,
      summary: "Listen for connections (TCP)",
      description: "An unbound socket first gets an ephemeral port.",
      tags: TAGS,
      auth: "session",
      params: SocketParamsSchema,
      body: ListenBodySchema,
      responses: { 200: { description: "Listening.", json: ListenResultSchema } },
      errors: ["EADDRINUSE", "EALREADY", "EISCONN", "EOPNOTSUPP"],
      handler: (c, { params, body }) => {
        const entry = socketOf(c, params.id);
        return c.json(c.get("session").sockets.listen(entry, body));
      },
    }),
    defineRoute({
      operationId: "acceptSocket",
      method: "POST",
      path: `${SOCKET}/accept`,
      summary: "Accept a connection (long-poll)",
      description: "Waits for a connection on a listening socket and returns it as a new socket " +
        "sharing the listener's local address. Answers 204 when the timeout passes first.",
      tags: TAGS,
      auth: "session",
      params: SocketParamsSchema,
      body: AcceptBodySchema,
      responses: {
        200: { description: "The accepted connection (a new socket).", json: AcceptResultSchema },
        204: { description: "No connection arrived before the timeout." },
      },
      errors: ["ENOTCONN", "EOPNOTSUPP", "EMFILE"],
      handler: async (c, { params, body }) => {
        const table = c.get("session").sockets;
        const entry = socketOf(c, params.id);
        const child = await table.accept(entry, {
          timeoutMs: body.timeoutMs,
          signal: c.req.raw.signal,
        });
        if (!child) return c.body(null, 204);
        return c.json(
          { id: child.id, local: child.local!.toJSON(), remote: child.remote! },
          200,
          { location: `/v1/sessions/${params.sid}/sockets/${child.id}` },
        );
      },
    }),
    defineRoute({
      operationId: "connectSocket",
      method: "POST",
      path: `${SOCKET}/connect`,
      summary: "Connect (TCP: long-poll until established; UDP: set the default peer)",
      description: "A TCP connect that fails or times out leaves the socket closed: create a " +
        "new one to try again.",
      tags: TAGS,
      auth: "session",
      params: SocketParamsSchema,
      body: ConnectBodySchema,
      responses: { 200: { description: "Connected.", json: ConnectResultSchema } },
      errors: [
        "EISCONN",
        "EALREADY",
        "EADDRINUSE",
        "EMFILE",
        "ECONNREFUSED",
        "ECONNRESET",
        "EHOSTUNREACH",
        "ETIMEDOUT",
      ],
      handler: async (c, { params, body }) => {
        const entry = socketOf(c, params.id);
        const r = await c.get("session").sockets.connect(entry, {
          address: body.address,
          port: body.port,
          timeoutMs: body.timeoutMs,
          signal: c.req.raw.signal,
        });
        return c.json(r);
      },
    }),
    defineRoute({
      operationId: "sendSocket",
      method: "POST",
      path: `${SOCKET}/send`,
      summary: "Send bytes",
      description: "The body (`application/octet-stream`, at most 1 MiB) is the data. TCP: " +
        "answers once all of it is queued in the send buffer, or with the count queued when " +
        "the timeout passes (504 if none). UDP: one datagram to `?address=&port=`, or to the " +
        "connected peer.",
      tags: TAGS,
      auth: "session",
      params: SocketParamsSchema,
      query: SendQuerySchema,
      binaryBody: { maxBytes: MAX_SEND_BODY_BYTES },
      responses: { 200: { description: "Bytes taken.", json: SendResultSchema } },
      errors: [
        "ENOTCONN",
        "EISCONN",
        "EPIPE",
        "EBUSY",
        "ENOBUFS",
        "EMSGSIZE",
        "ECONNRESET",
        "EHOSTUNREACH",
        "ETIMEDOUT",
      ],
      handler: async (c, { params, query, bytes }) => {
        const entry = socketOf(c, params.id);
        const n = await c.get("session").sockets.send(entry, bytes, {
          to: query.address !== undefined && query.port !== undefined
            ? { address: query.address, port: query.port }
            : undefined,
          timeoutMs: query.timeoutMs,
          signal: c.req.raw.signal,
        });
        return c.json({ bytes: n });
      },
    }),
    defineRoute({
      operationId: "recvSocket",
      method: "POST",
      path: `${SOCKET}/recv`,
      summary: "Receive bytes (long-poll)",
      description: "200 with the bytes (`application/octet-stream`). At the end of the TCP " +
        `stream: 200 with an empty body and \`${EOF_HEADER}: 1\`. Nothing before the timeout: ` +
        `204. UDP: one datagram, its sender in \`${PEER_ADDRESS_HEADER}\` and ` +
        `\`${PEER_PORT_HEADER}\`.`,
      tags: TAGS,
      auth: "session",
      params: SocketParamsSchema,
      query: RecvQuerySchema,
      responses: {
        200: {
          description: "Data, or the end of the stream.",
          contentType: "application/octet-stream",
          headers: {
            [EOF_HEADER]: "`1` at the end of the stream (the body is empty).",
            [PEER_ADDRESS_HEADER]: "UDP: the sender's address.",
            [PEER_PORT_HEADER]: "UDP: the sender's port.",
            [TRUNCATED_HEADER]: "UDP: `1` when the datagram was longer than maxBytes.",
          },
        },
        204: { description: "Nothing arrived before the timeout." },
      },
      errors: ["ENOTCONN", "EBUSY", "ECONNRESET", "ETIMEDOUT"],
      handler: async (c, { params, query }) => {
        const entry = socketOf(c, params.id);
        const r = await c.get("session").sockets.receive(entry, {
          maxBytes: query.maxBytes ?? DEFAULT_RECV_BYTES,
          timeoutMs: query.timeoutMs,
          signal: c.req.raw.signal,
        });
        if (!r) return c.body(null, 204);
        const headers: Record<string, string> = { "content-type": "application/octet-stream" };
        if (r.eof) headers[EOF_HEADER] = "1";
        if (r.from) {
          headers[PEER_ADDRESS_HEADER] = r.from.address;
          headers[PEER_PORT_HEADER] = String(r.from.port);
        }
        if (r.truncated) headers[TRUNCATED_HEADER] = "1";
        return new Response(r.data as Uint8Array<ArrayBuffer>, { status: 200, headers });
      },
    }),
    defineRoute({
      operationId: "shutdownSocket",
      method: "POST",
      path: `${SOCKET}/shutdown`,
      summary: "Shut down reading, writing or both (TCP)",
      description: "`write` sends FIN after the queued data; after `read`, recv answers end of " +
        "stream.",
      tags: TAGS,
      auth: "session",
      params: SocketParamsSchema,
      body: ShutdownBodySchema,
      responses: { 200: { description: "The socket after the shutdown.", json: SocketViewSchema } },
      errors: ["ENOTCONN", "EOPNOTSUPP"],
      handler: (c, { params, body }) => {
        const table = c.get("session").sockets;
        const entry = socketOf(c, params.id);
        table.shutdown(entry, body.how);
        return c.json(table.view(entry));
      },
    }),
    defineRoute({
      operationId: "deleteSocket",
      method: "DELETE",
      path: SOCKET,
      summary: "Close a socket",
      description: "A connection closes gracefully (FIN after the queued data; RST when unread " +
        "data is left) or, with `?abort=true`, at once with a RST. A listener resets the " +
        "connections not yet accepted. Waiting long-polls end; an attached stream closes.",
      tags: TAGS,
      auth: "session",
      params: SocketParamsSchema,
      query: DeleteSocketQuerySchema,
      responses: { 204: { description: "Closed and removed." } },
      errors: [],
      handler: (c, { params, query }) => {
        const table = c.get("session").sockets;
        socketOf(c, params.id);
        table.delete(params.id, { abort: query.abort === "true" || query.abort === "1" });
        return c.body(null, 204);
      },
    }),
    defineRoute({
      operationId: "streamSocket",
      method: "GET",
      path: `${SOCKET}/stream`,
      summary:
        "Stream a TCP connection (or, with netisle.stream.v1, a UDP socket) over a WebSocket",
      description: "Upgrade to a WebSocket: binary messages both ways carry the byte stream " +
        "(text messages are taken as UTF-8). Closing the WebSocket sends FIN; the peer's FIN " +
        "closes the WebSocket (1000) after everything was delivered; a reset closes it with " +
        "1011. The session token may come as `?token=`. While a stream is attached, send and " +
        "recv answer 409 EBUSY. With the subprotocol `netisle.stream.v1` every message starts " +
        "with a type byte (DATA, ACK, FIN, OPEN, ERROR): credit-based flow control both ways, " +
        "a half-close each way, UDP sockets one datagram per message, and the stream owns the " +
        'socket (README, "The stream protocol").',
      tags: TAGS,
      auth: "session-or-query",
      websocket: true,
      params: SocketParamsSchema,
      query: StreamQuerySchema,
      responses: { 101: { description: "Switching to the WebSocket protocol." } },
      errors: ["EUPGRADE", "ENOTSUP", "ENOTCONN", "EOPNOTSUPP", "EBUSY"],
      handler: (c, { params }) => {
        const table = c.get("session").sockets;
        const entry = socketOf(c, params.id);
        if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
          throw new HttpProblem("EUPGRADE", "the stream is a WebSocket: send Upgrade: websocket", {
            headers: { upgrade: "websocket" },
          });
        }
        const upgrade = options.upgradeWebSocket;
        if (!upgrade) {
          throw new HttpProblem("ENOTSUP", "this server was started without WebSocket support");
        }
        // `netisle.stream.v1` when offered (socket_stream_protocol.ts), else the original stream.
        const protocol = selectStreamSubprotocol(c.req.header("sec-websocket-protocol"));
        const pending = !protocol
          ? openSocketStream(table, entry, options.stream)
          : entry.protocol === "udp"
          ? openUdpStream(table, entry, options.stream)
          : openStreamV1(table, entry, options.stream);
        let upgraded;
        try {
          const withProtocol: (
            r: Request,
            o: { protocol?: string },
          ) => ReturnType<WebSocketUpgrader> = upgrade;
          upgraded = withProtocol(c.req.raw, { protocol });
        } catch (err) {
          pending.cancel();
          throw err;
        }
        pending.start(upgraded.socket);
        return upgraded.response;
      },
    }),
  ];
}
