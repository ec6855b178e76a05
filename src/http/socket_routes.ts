/**
 * The socket routes of the HTTP API (`/v1/sessions/:sid/sockets...`), an
 * `OpenAPIHono` sub-app: sockets inside a session's network for any HTTP
 * client. Each handler is thin; the session's {@linkcode SocketTable} does
 * the work.
 *
 * @module
 */

import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { SocketEntry } from "../socket/socket_entry.ts";
import {
  apiRoute,
  binaryContent,
  headerDocs,
  jsonContent,
  type RouteContext,
} from "./api_route.ts";
import type { AppEnv, WebSocketUpgrader } from "./app_env.ts";
import { HttpProblem } from "./problem.ts";
import { openSocketStream, type SocketStreamOptions } from "./socket_stream.ts";
import { socketDetails, socketListView, socketView } from "./socket_view.ts";
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
import { validationHook } from "./validation.ts";
import {
  EOF_HEADER,
  MAX_SEND_BODY_BYTES,
  PEER_ADDRESS_HEADER,
  PEER_PORT_HEADER,
  recvFromSocket,
  sendToSocket,
  socketOf as socketOfSession,
  TRUNCATED_HEADER,
} from "./socket_transfer.ts";

// The data routes' constants live with their shared logic (`socket_transfer.ts`).
export {
  EOF_HEADER,
  MAX_SEND_BODY_BYTES,
  PEER_ADDRESS_HEADER,
  PEER_PORT_HEADER,
  TRUNCATED_HEADER,
} from "./socket_transfer.ts";

/** Options of {@linkcode socketRoutes}. */
export interface SocketRouteOptions {
  /** The runtime's WebSocket upgrade; without it the stream route answers 501. */
  upgradeWebSocket?: WebSocketUpgrader;
  /** Tuning of WebSocket streams. */
  stream?: SocketStreamOptions;
}

const SOCKETS = "/v1/sessions/{sid}/sockets";
const SOCKET = `${SOCKETS}/{id}`;
const TAGS = ["sockets"];

function socketOf(c: Context<AppEnv>, id: string): SocketEntry {
  return socketOfSession(c.get("session"), id);
}

/**
 * The socket routes.
 *
 * @example
 * ```ts
 * app.route("/", socketRoutes(ctx, { upgradeWebSocket }));
 * ```
 */
export function socketRoutes(
  ctx: RouteContext,
  options: SocketRouteOptions = {},
): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(
    apiRoute(ctx, {
      operationId: "listSockets",
      method: "get",
      path: SOCKETS,
      summary: "List the session's sockets",
      description: "State, control-block list, local and remote endpoints and queue sizes of " +
        "every socket, and the number of control blocks on each core list.",
      tags: TAGS,
      auth: "session",
      request: { params: SessionOnlyParamsSchema },
      responses: { 200: { description: "The sockets.", content: jsonContent(SocketListSchema) } },
      errors: [],
    }),
    (c) => c.json(socketListView(c.get("session").sockets), 200),
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "createSocket",
      method: "post",
      path: SOCKETS,
      summary: "Create a socket",
      tags: TAGS,
      auth: "session",
      request: { params: SessionOnlyParamsSchema },
      jsonBody: CreateSocketBodySchema,
      responses: {
        201: {
          description: "The new socket.",
          content: jsonContent(CreatedSocketSchema),
          headers: headerDocs({ Location: "The socket's URL." }),
        },
      },
      errors: ["EMFILE"],
    }),
    (c) => {
      const params = c.req.valid("param");
      const body = c.req.valid("json");
      const entry = c.get("session").sockets.create(body.protocol);
      return c.json(
        { id: entry.id, protocol: entry.protocol, state: entry.state },
        201,
        { location: `/v1/sessions/${params.sid}/sockets/${entry.id}` },
      );
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "getSocket",
      method: "get",
      path: SOCKET,
      summary: "One socket's details",
      description: "The listing row plus, for a TCP connection, its estimates and counters " +
        "(rtt, rto, cwnd, windows, retransmits...), for a listener its queues, for UDP its counters.",
      tags: TAGS,
      auth: "session",
      request: { params: SocketParamsSchema },
      responses: { 200: { description: "The socket.", content: jsonContent(SocketDetailsSchema) } },
      errors: [],
    }),
    (c) => {
      const params = c.req.valid("param");
      return c.json(socketDetails(socketOf(c, params.id)), 200);
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "bindSocket",
      method: "post",
      path: `${SOCKET}/bind`,
      summary: "Bind to a local port",
      description: "A bound TCP socket holds its port until it listens or connects from it.",
      tags: TAGS,
      auth: "session",
      request: { params: SocketParamsSchema },
      jsonBody: BindBodySchema,
      responses: {
        200: { description: "The local endpoint.", content: jsonContent(BindResultSchema) },
      },
      errors: ["EADDRINUSE", "EALREADY", "EISCONN", "EMFILE"],
    }),
    (c) => {
      const params = c.req.valid("param");
      const body = c.req.valid("json");
      const entry = socketOf(c, params.id);
      return c.json({ local: c.get("session").sockets.bind(entry, body) }, 200);
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "listenSocket",
      method: "post",
      path: `${SOCKET}/listen`,
      summary: "Listen for connections (TCP)",
      description: "An unbound socket first gets an ephemeral port.",
      tags: TAGS,
      auth: "session",
      request: { params: SocketParamsSchema },
      jsonBody: ListenBodySchema,
      responses: { 200: { description: "Listening.", content: jsonContent(ListenResultSchema) } },
      errors: ["EADDRINUSE", "EALREADY", "EISCONN", "EOPNOTSUPP"],
    }),
    (c) => {
      const params = c.req.valid("param");
      const body = c.req.valid("json");
      const entry = socketOf(c, params.id);
      return c.json(c.get("session").sockets.listen(entry, body), 200);
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "acceptSocket",
      method: "post",
      path: `${SOCKET}/accept`,
      summary: "Accept a connection (long-poll)",
      description: "Waits for a connection on a listening socket and returns it as a new socket " +
        "sharing the listener's local address. Answers 204 when the timeout passes first.",
      tags: TAGS,
      auth: "session",
      request: { params: SocketParamsSchema },
      jsonBody: AcceptBodySchema,
      responses: {
        200: {
          description: "The accepted connection (a new socket).",
          content: jsonContent(AcceptResultSchema),
        },
        204: { description: "No connection arrived before the timeout." },
      },
      errors: ["ENOTCONN", "EOPNOTSUPP", "EMFILE"],
    }),
    async (c) => {
      const params = c.req.valid("param");
      const body = c.req.valid("json");
      const table = c.get("session").sockets;
      const entry = socketOf(c, params.id);
      const child = await table.accept(entry, {
        timeoutMs: body.timeoutMs,
        signal: c.req.raw.signal,
      });
      if (!child) return c.body(null, 204);
      return c.json(
        { id: child.id, local: child.localEndpoint!, remote: child.remote! },
        200,
        { location: `/v1/sessions/${params.sid}/sockets/${child.id}` },
      );
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "connectSocket",
      method: "post",
      path: `${SOCKET}/connect`,
      summary: "Connect (TCP: long-poll until established; UDP: set the default peer)",
      description: "A TCP connect that fails or times out leaves the socket closed: create a " +
        "new one to try again.",
      tags: TAGS,
      auth: "session",
      request: { params: SocketParamsSchema },
      jsonBody: ConnectBodySchema,
      responses: { 200: { description: "Connected.", content: jsonContent(ConnectResultSchema) } },
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
    }),
    async (c) => {
      const params = c.req.valid("param");
      const body = c.req.valid("json");
      const entry = socketOf(c, params.id);
      const r = await c.get("session").sockets.connect(entry, {
        address: body.address,
        port: body.port,
        timeoutMs: body.timeoutMs,
        signal: c.req.raw.signal,
      });
      return c.json(r, 200);
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "sendSocket",
      method: "post",
      path: `${SOCKET}/send`,
      summary: "Send bytes",
      description: "The body (`application/octet-stream`, at most 1 MiB) is the data. TCP: " +
        "answers once all of it is queued in the send buffer, or with the count queued when " +
        "the timeout passes (504 if none). UDP: one datagram to `?address=&port=`, or to the " +
        "connected peer. The body counts against the session's memory quota from before it " +
        "is read until the send returns (429 ENOBUFS when it does not fit).",
      tags: TAGS,
      auth: "session",
      request: { params: SocketParamsSchema, query: SendQuerySchema },
      binaryBody: { maxBytes: MAX_SEND_BODY_BYTES },
      responses: { 200: { description: "Bytes taken.", content: jsonContent(SendResultSchema) } },
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
    }),
    async (c) => {
      const n = await sendToSocket(
        c.get("session"),
        c.req.valid("param").id,
        c.get("bytes"),
        c.req.valid("query"),
        c.req.raw.signal,
        c.get("body"),
      );
      return c.json({ bytes: n }, 200);
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "recvSocket",
      method: "post",
      path: `${SOCKET}/recv`,
      summary: "Receive bytes (long-poll)",
      description: "200 with the bytes (`application/octet-stream`). At the end of the TCP " +
        `stream: 200 with an empty body and \`${EOF_HEADER}: 1\`. Nothing before the timeout: ` +
        `204. UDP: one datagram, its sender in \`${PEER_ADDRESS_HEADER}\` and ` +
        `\`${PEER_PORT_HEADER}\`.`,
      tags: TAGS,
      auth: "session",
      request: { params: SocketParamsSchema, query: RecvQuerySchema },
      responses: {
        200: {
          description: "Data, or the end of the stream.",
          content: binaryContent("application/octet-stream"),
          headers: headerDocs({
            [EOF_HEADER]: "`1` at the end of the stream (the body is empty).",
            [PEER_ADDRESS_HEADER]: "UDP: the sender's address.",
            [PEER_PORT_HEADER]: "UDP: the sender's port.",
            [TRUNCATED_HEADER]: "UDP: `1` when the datagram was longer than maxBytes.",
          }),
        },
        204: { description: "Nothing arrived before the timeout." },
      },
      errors: ["ENOTCONN", "EBUSY", "ECONNRESET", "ETIMEDOUT"],
    }),
    (c) =>
      recvFromSocket(
        c.get("session"),
        c.req.valid("param").id,
        c.req.valid("query"),
        c.req.raw.signal,
      ),
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "shutdownSocket",
      method: "post",
      path: `${SOCKET}/shutdown`,
      summary: "Shut down reading, writing or both (TCP)",
      description: "`write` sends FIN after the queued data; after `read`, recv answers end of " +
        "stream.",
      tags: TAGS,
      auth: "session",
      request: { params: SocketParamsSchema },
      jsonBody: ShutdownBodySchema,
      responses: {
        200: {
          description: "The socket after the shutdown.",
          content: jsonContent(SocketViewSchema),
        },
      },
      errors: ["ENOTCONN", "EOPNOTSUPP"],
    }),
    (c) => {
      const params = c.req.valid("param");
      const body = c.req.valid("json");
      const table = c.get("session").sockets;
      const entry = socketOf(c, params.id);
      table.shutdown(entry, body.how);
      return c.json(socketView(entry), 200);
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "deleteSocket",
      method: "delete",
      path: SOCKET,
      summary: "Close a socket",
      description: "A connection closes gracefully (FIN after the queued data; RST when unread " +
        "data is left) or, with `?abort=true`, at once with a RST. A listener resets the " +
        "connections not yet accepted. Waiting long-polls end; an attached stream closes.",
      tags: TAGS,
      auth: "session",
      request: { params: SocketParamsSchema, query: DeleteSocketQuerySchema },
      responses: { 204: { description: "Closed and removed." } },
      errors: [],
    }),
    (c) => {
      const params = c.req.valid("param");
      const query = c.req.valid("query");
      const table = c.get("session").sockets;
      socketOf(c, params.id);
      table.delete(params.id, { abort: query.abort === "true" || query.abort === "1" });
      return c.body(null, 204);
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "streamSocket",
      method: "get",
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
      request: { params: SocketParamsSchema, query: StreamQuerySchema },
      responses: { 101: { description: "Switching to the WebSocket protocol." } },
      errors: ["EUPGRADE", "ENOTSUP", "ENOTCONN", "EOPNOTSUPP", "EBUSY"],
    }),
    (c) => {
      const params = c.req.valid("param");
      const session = c.get("session");
      const table = session.sockets;
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
        ? openSocketStream(
          table,
          entry,
          { quota: session.stack.quota.memory, clock: ctx.clock },
          options.stream,
        )
        : entry.protocol === "udp"
        ? openUdpStream(table, entry, options.stream)
        : openStreamV1(table, entry, options.stream);
      let upgraded;
      try {
        upgraded = upgrade(c.req.raw, { protocol });
      } catch (err) {
        pending.cancel();
        throw err;
      }
      pending.start(upgraded.socket);
      return upgraded.response;
    },
  );
  return app;
}
