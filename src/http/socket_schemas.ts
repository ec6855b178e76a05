/**
 * zod schemas of the socket routes: path parameters, queries and bodies that
 * validate requests, and the response shapes the OpenAPI document shows.
 *
 * @module
 */

import { z } from "zod";
import { MAX_POLL_TIMEOUT_MS } from "../socket/poll_deadline.ts";
import { IpAddressSchema, SessionIdSchema } from "./schemas.ts";

/** What a socket id looks like: `k_` and 16 base64url characters (12 random bytes). */
export const SOCKET_ID_PATTERN = /^k_[A-Za-z0-9_-]{16}$/;

/** A socket id as the socket table makes them: `k_` and 16 base64url characters. */
export const SocketIdSchema = z.string().regex(SOCKET_ID_PATTERN, {
  message: 'a socket id is "k_" followed by 16 base64url characters',
});

/** Path parameters of `/v1/sessions/:sid/sockets/:id...`. */
export const SocketParamsSchema = z.strictObject({ sid: SessionIdSchema, id: SocketIdSchema });

/** Path parameters of `/v1/sessions/:sid/...`. */
export const SessionOnlyParamsSchema = z.strictObject({ sid: SessionIdSchema });

const TimeoutSchema = z.int().min(0).max(MAX_POLL_TIMEOUT_MS).describe(
  `How long to wait, in ms (default 30000, at most ${MAX_POLL_TIMEOUT_MS}).`,
);
/**
 * An integer query parameter: the string is coerced. A query value is never
 * null; saying so keeps the OpenAPI generator (which probes a schema with
 * `null`, and `Number(null)` is 0) from documenting it as nullable.
 */
function queryInt(min: number, max: number) {
  return z.preprocess(
    (v) => v === null ? undefined : v,
    z.coerce.number().int().min(min).max(max),
  );
}

const QueryTimeoutSchema = queryInt(0, MAX_POLL_TIMEOUT_MS).describe(
  `How long to wait, in ms (default 30000, at most ${MAX_POLL_TIMEOUT_MS}).`,
);

/** Body of `POST /v1/sessions/:sid/sockets`. */
export const CreateSocketBodySchema = z.strictObject({
  protocol: z.enum(["tcp", "udp"]).describe("The transport."),
});

/** Body of `POST .../bind`. */
export const BindBodySchema = z.strictObject({
  address: IpAddressSchema.optional().describe(
    "One of the session's addresses, 0.0.0.0 or :: (all mean the port on every address " +
      "of the session: a TCP port takes IPv4 and IPv6 alike).",
  ),
  port: z.int().min(0).max(65535).optional().describe(
    "Local port; 0 or absent picks an ephemeral one (49152..65535).",
  ),
});

/** Body of `POST .../listen`. */
export const ListenBodySchema = z.strictObject({
  backlog: z.int().min(1).max(1024).optional().describe(
    "Most half-open and most not-yet-accepted connections each (default 128); SYN cookies beyond.",
  ),
});

/** Body of `POST .../accept`. */
export const AcceptBodySchema = z.strictObject({ timeoutMs: TimeoutSchema.optional() });

/** Body of `POST .../connect`. */
export const ConnectBodySchema = z.strictObject({
  address: IpAddressSchema.describe(
    "The peer's address on the session's link: IPv4, or IPv6 in the session's prefix or " +
      "link-local (e.g. 10.0.2.15, fd00::15).",
  ),
  port: z.int().min(1).max(65535).describe("The peer's port."),
  timeoutMs: TimeoutSchema.optional(),
});

/** Query of `POST .../send`. */
export const SendQuerySchema = z.strictObject({
  address: IpAddressSchema.optional().describe(
    "UDP: the destination (unless the socket is connected).",
  ),
  port: z.coerce.number().int().min(1).max(65535).optional().describe("UDP: the destination port."),
  timeoutMs: QueryTimeoutSchema.optional(),
}).superRefine((v, ctx) => {
  if ((v.address === undefined) !== (v.port === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: [v.address === undefined ? "address" : "port"],
      message: "address and port go together",
    });
  }
});

/** Largest `maxBytes` of a recv. */
export const MAX_RECV_BYTES = 1024 * 1024;
/** `maxBytes` of a recv that names none. */
export const DEFAULT_RECV_BYTES = 65536;

/** Query of `POST .../recv`. */
export const RecvQuerySchema = z.strictObject({
  maxBytes: z.coerce.number().int().min(1).max(MAX_RECV_BYTES).optional().describe(
    `Most bytes to return (default ${DEFAULT_RECV_BYTES}); a longer UDP datagram is cut.`,
  ),
  timeoutMs: QueryTimeoutSchema.optional(),
});

/** Body of `POST .../shutdown`. */
export const ShutdownBodySchema = z.strictObject({
  how: z.enum(["read", "write", "both"]).describe("`write` sends FIN after the queued data."),
});

/** Query of `DELETE .../sockets/:id`. */
export const DeleteSocketQuerySchema = z.strictObject({
  abort: z.enum(["true", "false", "1", "0"]).optional().describe(
    "`true`: reset the connection (RST) instead of closing it gracefully (FIN).",
  ),
});

/** Query of `GET .../stream`: the token may come here (browsers cannot set headers). */
export const StreamQuerySchema = z.strictObject({
  token: z.string().min(1).max(256).optional().describe("The session token."),
});

// ------------------------------------------------------------ responses

/** An endpoint: an address (IPv4, or IPv6 in RFC 5952 form) and a port. */
export const EndpointSchema = z.object({ address: z.string(), port: z.int() });

/** A session's quotas (`quota` of the session view and of the socket listing). */
export const QuotaSchema = z.object({
  sockets: z.object({ used: z.int(), limit: z.int(), refused: z.int() }).describe(
    "Socket units: API sockets plus connections waiting in accept queues; refused: EMFILEs.",
  ),
  memory: z.object({ used: z.int(), peak: z.int(), limit: z.int(), refused: z.int() }).describe(
    "Bytes of storage the session holds (buffers plus per-buffer overhead); refused: charges " +
      "refused (ENOBUFS, dropped capture frames, data the core refused).",
  ),
});

/** One row of the socket listing. */
export const SocketViewSchema = z.object({
  id: z.string(),
  protocol: z.enum(["tcp", "udp"]),
  state: z.enum(["created", "bound", "listening", "connecting", "connected", "closed"]),
  tcpState: z.string().nullable().describe("RFC 9293 state of a TCP connection."),
  pcbList: z.enum(["none", "bound", "listen", "active", "time-wait", "closed", "udp"]),
  local: EndpointSchema.nullable(),
  remote: EndpointSchema.nullable(),
  sendQueued: z.int(),
  recvQueued: z.int(),
  acceptedFrom: z.string().nullable().describe("Id of the listening socket it came from."),
  streaming: z.boolean(),
  error: z.string().nullable(),
  acceptQueue: z.int().nullable().describe(
    "A listener's connections waiting to be accepted (each holds a socket unit); else null.",
  ),
});

/** `tcp` of the socket details: the connection's estimates and counters. */
export const TcpInfoSchema = z.looseObject({
  state: z.string(),
  sendMss: z.int(),
  rttMs: z.number().nullable(),
  rttVarMs: z.number().nullable(),
  rtoMs: z.number(),
  cwnd: z.number(),
  ssthresh: z.number().nullable(),
  congestionControl: z.string(),
  sendWindow: z.int(),
  recvWindow: z.int(),
  sendWindowScale: z.int(),
  recvWindowScale: z.int(),
  timestamps: z.boolean(),
  sack: z.boolean(),
  bytesInFlight: z.int(),
  sendQueued: z.int(),
  recvQueued: z.int(),
  outOfOrderBytes: z.int(),
  retransmits: z.int(),
  timeouts: z.int(),
  fastRetransmits: z.int(),
  segmentsIn: z.int(),
  segmentsOut: z.int(),
  bytesAcked: z.number(),
  bytesReceived: z.number(),
});

/** `GET .../sockets/:id`. */
export const SocketDetailsSchema = SocketViewSchema.extend({
  tcp: TcpInfoSchema.nullable(),
  listener: z.object({
    backlog: z.int(),
    synQueue: z.int(),
    acceptQueue: z.int(),
    cookiesSent: z.int(),
    cookiesAccepted: z.int(),
  }).nullable(),
  udp: z.object({
    queuedDatagrams: z.int(),
    rxDatagrams: z.int(),
    rxBytes: z.int(),
    rxQueueDrops: z.int(),
    txDatagrams: z.int(),
    txBytes: z.int(),
    txDrops: z.int(),
  }).nullable(),
});

/** `GET /v1/sessions/:sid/sockets`. */
export const SocketListSchema = z.object({
  sockets: z.array(SocketViewSchema),
  pcbs: z.object({
    bound: z.int(),
    listen: z.int(),
    active: z.int(),
    timeWait: z.int(),
    udp: z.int(),
  }).describe("Control blocks on each core list, orphaned connections still closing included."),
  bufferedBytes: z.int(),
  limits: z.object({ maxSockets: z.int(), maxBufferedBytes: z.int() }),
  quota: QuotaSchema,
});

/** `POST /v1/sessions/:sid/sockets`. */
export const CreatedSocketSchema = z.object({
  id: z.string(),
  protocol: z.enum(["tcp", "udp"]),
  state: z.string(),
});

/** `POST .../bind`. */
export const BindResultSchema = z.object({ local: EndpointSchema });

/** `POST .../listen`. */
export const ListenResultSchema = z.object({ local: EndpointSchema, backlog: z.int() });

/** `POST .../accept`. */
export const AcceptResultSchema = z.object({
  id: z.string().describe("The new socket."),
  local: EndpointSchema,
  remote: EndpointSchema,
});

/** `POST .../connect`. */
export const ConnectResultSchema = z.object({ local: EndpointSchema, remote: EndpointSchema });

/** `POST .../send`. */
export const SendResultSchema = z.object({
  bytes: z.int().describe("Bytes queued (TCP) or sent."),
});
