/**
 * The session routes (`/v1/sessions...`: create, read, delete, the tunnel
 * WebSocket, the pcap stream) and the service routes (`/healthz`,
 * `/metrics`, `/openapi.json`, `/docs`), each an `OpenAPIHono` sub-app that
 * `createApp` mounts.
 *
 * @module
 */

import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { parseIpv4Address, parseIpv6Address, parseMacAddress } from "../wire/mod.ts";
import { attachWebSocketTunnel } from "../session/tunnel_server.ts";
import {
  framingForSubprotocol,
  selectTunnelSubprotocol,
  tunnelUrl,
} from "../wire/tunnel_protocol.ts";
import {
  apiRoute,
  binaryContent,
  headerDocs,
  jsonContent,
  type RouteContext,
} from "./api_route.ts";
import type { AppEnv, WebSocketUpgrader } from "./app_env.ts";
import {
  type HttpMetrics,
  type MetricsCollector,
  PROMETHEUS_CONTENT_TYPE,
  renderMetrics,
} from "./metrics.ts";
import { docsPage, type OpenApiDocument } from "./openapi.ts";
import { PcapQuerySchema, pcapResponse } from "./pcap_stream.ts";
import { HttpProblem } from "./problem.ts";
import { CreateSessionBodySchema, SessionParamsSchema, TunnelQuerySchema } from "./schemas.ts";
import { sessionView } from "./session_view.ts";
import { QuotaSchema } from "./socket_schemas.ts";
import { validationHook } from "./validation.ts";

/** Body of `201` from `POST /v1/sessions`. */
export const CreatedSessionSchema = z.object({
  id: z.string(),
  token: z.string().describe("Bearer token of every route of this session."),
  mac: z.string(),
  ipv4: z.object({ address: z.string(), prefixLength: z.int() }),
  ipv6: z.object({ address: z.string(), prefix: z.string(), linkLocal: z.string() }).nullable()
    .describe("The stack's IPv6 addresses; null without IPv6."),
  mtu: z.int(),
  tunnel: z.object({ url: z.string(), framing: z.string() }),
});

/** A `DelayHistogram` summary; quantiles are power-of-two bucket bounds. */
const DelaySummarySchema = z.object({
  count: z.int(),
  p50Ms: z.number(),
  p99Ms: z.number(),
  maxMs: z.number(),
  meanMs: z.number(),
});

/** Body of `GET /v1/sessions/:sid` (the main fields; counters are open-ended maps). */
export const SessionViewSchema = z.looseObject({
  id: z.string(),
  mac: z.string(),
  ipv4: z.object({ address: z.string(), prefixLength: z.int() }),
  ipv6: z.looseObject({
    address: z.string(),
    prefix: z.string(),
    linkLocal: z.string(),
    neighbors: z.array(z.object({
      address: z.string(),
      mac: z.string().nullable(),
      state: z.string(),
      queued: z.int(),
    })),
    pathMtu: z.array(z.object({ address: z.string(), mtu: z.int(), expiresInMs: z.number() })),
    routerAdvertisements: z.object({ sent: z.int(), solicited: z.int(), coalesced: z.int() }),
    reassembly: z.object({ completed: z.int(), timedOut: z.int(), discarded: z.int() }),
    dhcpv6: z.object({ replies: z.int(), dropped: z.int() }).nullable(),
  }).nullable().describe("IPv6 on the link; null when the session has none."),
  mtu: z.int(),
  ageMs: z.number(),
  idleMs: z.number(),
  tunnel: z.object({
    attached: z.boolean(),
    kind: z.string().nullable(),
    attachedForMs: z.number().nullable(),
    attaches: z.int(),
    rejectedMessages: z.int(),
    backpressureDrops: z.int(),
  }),
  counters: z.looseObject({
    rxFrames: z.int(),
    rxBytes: z.int(),
    txFrames: z.int(),
    txBytes: z.int(),
    drops: z.record(z.string(), z.int()),
    txDrops: z.record(z.string(), z.int()),
  }),
  arp: z.array(z.object({
    address: z.string(),
    mac: z.string().nullable(),
    state: z.string(),
    queued: z.int(),
  })),
  coreLock: z.object({
    acquisitions: z.int(),
    heldMs: z.number(),
    maxHeldMs: z.number(),
    reentries: z.int(),
    frameWait: DelaySummarySchema.describe(
      "From a frame's arrival to the core processing it (the lock is synchronous: near 0).",
    ),
    timerLateness: DelaySummarySchema.describe(
      "How late the session's timer fired (event-loop delay).",
    ),
  }),
  dhcp: z.looseObject({
    leases: z.array(z.object({
      address: z.string(),
      mac: z.string(),
      state: z.string(),
      expiresInMs: z.number(),
      hostname: z.string().nullable(),
    })),
    stats: z.looseObject({ drops: z.record(z.string(), z.int()) }),
  }).nullable().describe("The DHCP server's leases and counters; null when it is off."),
  quota: QuotaSchema,
  egress: z.looseObject({
    dialer: z.string(),
    dnsUpstream: z.string(),
    flows: z.array(z.looseObject({
      protocol: z.enum(["tcp", "udp"]),
      guest: z.string(),
      destination: z.string(),
      state: z.string(),
      bytesOut: z.int(),
      bytesIn: z.int(),
      ageMs: z.number(),
      idleMs: z.number(),
    })),
    denied: z.record(z.string(), z.int()),
    counters: z.looseObject({}),
    limits: z.looseObject({}),
  }).nullable().describe(
    "Egress: the session's flows to the outside (protocol, guest endpoint, destination, bytes " +
      "each way, age, state), flows refused by reason, counters and limits; null without egress.",
  ),
});

/** What {@linkcode sessionRoutes} needs besides the {@linkcode RouteContext}. */
export interface SessionRouteOptions {
  /** The runtime's WebSocket upgrade; without it the tunnel route answers 501. */
  upgradeWebSocket?: WebSocketUpgrader;
}

const TAGS = ["sessions"];

/**
 * The session routes.
 *
 * @example
 * ```ts
 * app.route("/", sessionRoutes(ctx, { upgradeWebSocket }));
 * ```
 */
export function sessionRoutes(
  ctx: RouteContext,
  options: SessionRouteOptions = {},
): OpenAPIHono<AppEnv> {
  const { registry } = ctx;
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(
    apiRoute(ctx, {
      operationId: "createSession",
      method: "post",
      path: "/v1/sessions",
      summary: "Create a session",
      description: "Every field is optional; unknown fields are refused. Needs the admin token " +
        "when the server has one.",
      tags: TAGS,
      auth: "admin",
      jsonBody: CreateSessionBodySchema,
      responses: {
        201: {
          description: "The session, its token and its tunnel URL.",
          content: jsonContent(CreatedSessionSchema),
          headers: headerDocs({ Location: "The session's URL." }),
        },
      },
      errors: ["ENFILE"],
    }),
    (c) => {
      const body = c.req.valid("json");
      let session;
      try {
        session = registry.create({
          ipv4: body.ipv4 && {
            address: parseIpv4Address(body.ipv4.address),
            prefixLength: body.ipv4.prefixLength,
          },
          mac: body.mac === undefined ? undefined : parseMacAddress(body.mac),
          mtu: body.mtu,
          dhcp: body.dhcp,
          egress: body.egress,
          ipv6: body.ipv6 && {
            prefix: parseIpv6Address(body.ipv6.prefix.split("/")[0]),
            address: parseIpv6Address(body.ipv6.address),
          },
        });
      } catch (err) {
        // Settings that pass the schema but not together (a DHCP pool larger than the subnet).
        if (err instanceof RangeError) throw new HttpProblem("EINVAL", err.message);
        throw err;
      }
      const view = sessionView(session);
      return c.json(
        {
          id: session.id,
          token: session.token,
          mac: view.mac,
          ipv4: view.ipv4,
          ipv6: view.ipv6 &&
            {
              address: view.ipv6.address,
              prefix: view.ipv6.prefix,
              linkLocal: view.ipv6.linkLocal,
            },
          mtu: view.mtu,
          tunnel: {
            url: tunnelUrl(new URL(c.req.url).origin, session.id),
            framing: "frame-per-message",
          },
        },
        201,
        { location: `/v1/sessions/${session.id}` },
      );
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "getSession",
      method: "get",
      path: "/v1/sessions/{sid}",
      summary: "A session: addressing, tunnel state, counters, ARP cache, core lock",
      tags: TAGS,
      auth: "session",
      request: { params: SessionParamsSchema },
      responses: { 200: { description: "The session.", content: jsonContent(SessionViewSchema) } },
      errors: [],
    }),
    (c) => c.json(sessionView(c.get("session")), 200),
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "deleteSession",
      method: "delete",
      path: "/v1/sessions/{sid}",
      summary: "Delete a session",
      description: "Closes every socket (connections with a RST), the tunnel and the timers.",
      tags: TAGS,
      auth: "session",
      request: { params: SessionParamsSchema },
      responses: { 204: { description: "Deleted." } },
      errors: [],
    }),
    (c) => {
      registry.delete(c.get("session").id);
      return c.body(null, 204);
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "tunnel",
      method: "get",
      path: "/v1/sessions/{sid}/tunnel",
      summary: "Attach the tunnel: Ethernet frames over a WebSocket",
      description: "One Ethernet frame per binary message, both ways (v86 wsproxy framing). " +
        "With the subprotocol `netisle.qemu-stream.v1` (or container2wasm's `binary`) the " +
        "binary messages carry QEMU stream framing (u32 big-endian length + frame, repeated, " +
        "split anywhere); a bad length closes with 4002. A text message closes with 1003, a " +
        "message over 1 MiB with 1009. " +
        "A second tunnel replaces the first (close code 4000); deleting the session closes " +
        "it with 4001. The token may come as `?token=`.",
      tags: TAGS,
      auth: "session-or-query",
      websocket: true,
      request: { params: SessionParamsSchema, query: TunnelQuerySchema },
      responses: { 101: { description: "Switching to the WebSocket protocol." } },
      errors: ["EUPGRADE", "ENOTSUP"],
    }),
    (c) => {
      const session = c.get("session");
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
        throw new HttpProblem("EUPGRADE", "the tunnel is a WebSocket: send Upgrade: websocket", {
          headers: { upgrade: "websocket" },
        });
      }
      if (!options.upgradeWebSocket) {
        throw new HttpProblem("ENOTSUP", "this server was started without WebSocket support");
      }
      // The adapter must answer this subprotocol: it gets it as a second argument, and
      // adapters that take one argument pick the same with selectTunnelSubprotocol.
      const protocol = selectTunnelSubprotocol(c.req.header("sec-websocket-protocol"));
      const upgrade: (req: Request, o: { protocol?: string }) => ReturnType<WebSocketUpgrader> =
        options.upgradeWebSocket;
      const { socket, response } = upgrade(c.req.raw, { protocol });
      attachWebSocketTunnel(session, socket, {
        framing: framingForSubprotocol(protocol),
        protocol,
      });
      return response;
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "pcap",
      method: "get",
      path: "/v1/sessions/{sid}/pcap",
      summary: "Stream a pcap of the session's frames",
      description: "A live capture, both ways, as a classic pcap file (`tshark -r -`, " +
        "Wireshark). Ends when the client goes away, after `maxFrames` or `seconds`, or with " +
        "the session.",
      tags: TAGS,
      auth: "session",
      request: { params: SessionParamsSchema, query: PcapQuerySchema },
      responses: {
        200: {
          description: "The capture.",
          content: binaryContent("application/vnd.tcpdump.pcap"),
        },
      },
      errors: [],
    }),
    (c) =>
      pcapResponse(c.get("session"), {
        ...c.req.valid("query"),
        signal: c.req.raw.signal,
        head: c.req.method === "HEAD",
      }),
  );
  return app;
}

/** What {@linkcode serviceRoutes} needs besides the {@linkcode RouteContext}. */
export interface ServiceRouteOptions {
  /** HTTP request counters for /metrics. */
  httpMetrics?: HttpMetrics;
  /** Extra /metrics families. */
  metricsCollectors?: readonly MetricsCollector[];
  /** The whole app's document, for /openapi.json (called once, lazily). */
  document: () => OpenApiDocument;
}

/**
 * The service routes: liveness, metrics, the OpenAPI document and its page.
 *
 * @example
 * ```ts
 * app.route("/", serviceRoutes(ctx, { document: () => openApiDocument(app) }));
 * ```
 */
export function serviceRoutes(
  ctx: RouteContext,
  options: ServiceRouteOptions,
): OpenAPIHono<AppEnv> {
  let doc: OpenApiDocument | undefined;
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(
    apiRoute(ctx, {
      operationId: "healthz",
      method: "get",
      path: "/healthz",
      summary: "Liveness",
      tags: ["service"],
      auth: "none",
      responses: {
        200: {
          description: "Up.",
          content: jsonContent(z.object({ status: z.literal("ok"), sessions: z.int() })),
        },
      },
      errors: [],
    }),
    (c) => c.json({ status: "ok" as const, sessions: ctx.registry.size }, 200),
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "metrics",
      method: "get",
      path: "/metrics",
      summary: "Prometheus metrics",
      description: "Sessions, sockets, frames and bytes each way, drops by reason, core-lock " +
        "time, HTTP requests. Needs the metrics token when the server has one.",
      tags: ["service"],
      auth: "metrics",
      responses: {
        200: {
          description: "Prometheus text format.",
          content: { "text/plain": { schema: z.string() } },
        },
      },
      errors: [],
    }),
    (c) => {
      const text = renderMetrics({
        registry: ctx.registry,
        http: options.httpMetrics,
        collectors: options.metricsCollectors,
      });
      return c.text(text, 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "openapi",
      method: "get",
      path: "/openapi.json",
      summary: "This API's OpenAPI 3.1 document",
      description: "Generated from the zod schemas that validate the requests.",
      tags: ["service"],
      auth: "none",
      responses: {
        200: {
          description: "The document.",
          content: jsonContent(
            z.looseObject({ openapi: z.string() }).describe("An OpenAPI 3.1 document."),
          ),
        },
      },
      errors: [],
    }),
    (c) => {
      doc ??= options.document();
      return c.json(doc, 200);
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "docs",
      method: "get",
      path: "/docs",
      summary: "The OpenAPI document, rendered",
      tags: ["service"],
      auth: "none",
      responses: { 200: { description: "An HTML page.", content: binaryContent("text/html") } },
      errors: [],
    }),
    (c) => c.html(docsPage()),
  );
  return app;
}
