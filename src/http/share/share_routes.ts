/**
 * Share links over HTTP: the session's routes that create, list and revoke
 * them (`/v1/sessions/:sid/shares`), and the middleware that answers the
 * links themselves, path-based (`/share/<key>/…`, the prefix stripped) or,
 * with a share domain, host-based (`<key>.<domain>`, any path). The
 * middleware runs before CORS and the API's routes: a link's requests belong
 * to the app behind it, not to the API. The request log names them
 * `/share/:key/*` or `(share host)`, never the key.
 *
 * @module
 */

import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import {
  formatIpv4Address,
  formatIpv6Address,
  ipv4InSubnet,
  ipv4SubnetBroadcast,
  type Ipv6Address,
  ipv6InPrefix,
  isIpv6LinkLocal,
  isIpv6Unicast,
  parseIpv4Address,
  parseIpv6Address,
} from "../../wire/mod.ts";
import { apiRoute, headerDocs, jsonContent, type RouteContext } from "../api_route.ts";
import { requestPeer } from "../request_peer.ts";
import { requestHeader } from "../incoming_request.ts";
import type { AppEnv, WebSocketUpgrader } from "../app_env.ts";
import { HttpProblem } from "../problem.ts";
import { IpAddressSchema, SessionIdSchema } from "../schemas.ts";
import { validationHook } from "../validation.ts";
import { proxyShare, type ShareProxyOptions } from "./share_proxy.ts";
import { MAX_SHARE_TTL_SECONDS, ShareRegistry } from "./share_registry.ts";

const NEWLINE_OR_TAB = /[\t\n\r]/;

/** Label of path-based link requests in the request log and metrics. */
export const SHARE_PATH_ROUTE = "/share/:key/*";
/** Label of host-based link requests in the request log and metrics. */
export const SHARE_HOST_ROUTE = "(share host)";

/** Options of the share links. */
export interface ShareOptions {
  /**
   * `[scheme://]domain[:port]`: links are `<scheme>://<key>.<domain>[:port]/`
   * (the scheme of the creating request when absent), and requests whose
   * host is `<key>.<domain>` go to that share. Without it links are
   * path-based on the API's own origin.
   */
  domain?: string;
  /** Live shares per session (429 EMFILE beyond). Default 16. */
  maxPerSession?: number;
  /** Live shares in all (429 ENFILE beyond). Default 10,000. */
  maxShares?: number;
  /** The proxy's limits. */
  proxy?: ShareProxyOptions;
}

/** A parsed share domain. */
export interface ShareDomain {
  /** `http:` or `https:`, when given. */
  scheme?: string;
  /** The domain, lowercase. */
  host: string;
  /** The port, when given. */
  port?: string;
}

/**
 * Parses `NETISLE_SHARE_DOMAIN`: `[http(s)://]domain[:port]`. Returns the
 * domain or a message quoting the value.
 *
 * @example
 * ```ts
 * parseShareDomain("https://share.example.com"); // { scheme: "https:", host: "share.example.com" }
 * ```
 */
export function parseShareDomain(text: string): ShareDomain | string {
  const t = text.trim();
  const m =
    /^(?:(https?):\/\/)?([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)(?::(\d{1,5}))?\/?$/i
      .exec(t);
  if (!m) return `"${text}" is not [http(s)://]domain[:port]`;
  return {
    ...(m[1] ? { scheme: `${m[1].toLowerCase()}:` } : {}),
    host: m[2].toLowerCase(),
    ...(m[6] ? { port: m[6] } : {}),
  };
}

const ShareParamsSchema = z.strictObject({
  sid: SessionIdSchema,
  id: z.string().regex(/^sh_[a-z2-7]{8}$/, { message: 'a share id is "sh_" and 8 characters' }),
});
const SessionParams = z.strictObject({ sid: SessionIdSchema });

const CreateShareBodySchema = z.strictObject({
  address: IpAddressSchema.describe(
    "An address on the session's network: IPv4, or IPv6 in its /64 or link-local.",
  ),
  port: z.int().min(1).max(65535),
  ttlSeconds: z.int().min(1).max(MAX_SHARE_TTL_SECONDS).optional().describe(
    "Lifetime; default 3600, at most 7 days.",
  ),
  name: z.string().max(64).optional(),
});

const ShareViewSchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  address: z.string(),
  port: z.int(),
  createdAt: z.string(),
  expiresAt: z.string(),
  requests: z.int(),
  activeConnections: z.int(),
});
const CreatedShareSchema = ShareViewSchema.extend({
  url: z.string().describe("The link. Its key is the only credential, shown this once."),
});

const TAGS = ["shares"];

/**
 * The share routes of the API.
 *
 * @example
 * ```ts
 * app.route("/", shareRoutes(ctx, shares, { domain: "share.example.com" }));
 * ```
 */
export function shareRoutes(
  ctx: RouteContext,
  registry: ShareRegistry,
  options: ShareOptions = {},
): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const domain = options.domain ? parseShareDomain(options.domain) : undefined;
  if (typeof domain === "string") throw new TypeError(`share domain: ${domain}`);
  app.openapi(
    apiRoute(ctx, {
      operationId: "createShare",
      method: "post",
      path: "/v1/sessions/{sid}/shares",
      summary: "Create a share link to an address and port inside the session",
      description: "A capability URL that proxies HTTP/1.1 requests (WebSocket upgrades too) to " +
        "`address:port` inside the session, bodies streamed both ways, with X-Forwarded-For, " +
        "-Host, -Proto (and -Prefix for path-based links). Path-based " +
        "(`/share/<key>/...`, the prefix stripped) unless the server has a share domain " +
        "(`<key>.<domain>`). The key is the only credential; it is shown once.",
      tags: TAGS,
      auth: "session",
      request: { params: SessionParams },
      jsonBody: CreateShareBodySchema,
      responses: {
        201: {
          description: "The share and its link.",
          content: jsonContent(CreatedShareSchema),
          headers: headerDocs({ Location: "The share's URL in the API." }),
        },
      },
      errors: ["EMFILE", "ENFILE"],
    }),
    (c) => {
      const session = c.get("session");
      const body = c.req.valid("json");
      checkTarget(
        session.withCore((s) => ({ ipv4: s.config.ipv4, ipv6: s.ipv6 })),
        body.address,
      );
      let created;
      try {
        created = registry.create(session, body);
      } catch (err) {
        if (err instanceof RangeError && err.message === "per-session") {
          throw new HttpProblem(
            "EMFILE",
            `session "${session.id}" has its maximum of ${registry.maxPerSession} share links`,
          );
        }
        if (err instanceof RangeError) {
          throw new HttpProblem("ENFILE", `the server has its maximum of share links`);
        }
        throw err;
      }
      const url = shareUrl(c, created.key, domain);
      return c.json({ ...created.share.view(), url }, 201, {
        location: `/v1/sessions/${session.id}/shares/${created.share.id}`,
      });
    },
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "listShares",
      method: "get",
      path: "/v1/sessions/{sid}/shares",
      summary: "The session's live share links (without their keys)",
      tags: TAGS,
      auth: "session",
      request: { params: SessionParams },
      responses: {
        200: {
          description: "The shares.",
          content: jsonContent(z.object({ shares: z.array(ShareViewSchema) })),
        },
      },
      errors: [],
    }),
    (c) => c.json({ shares: registry.list(c.get("session")).map((s) => s.view()) }, 200),
  );
  app.openapi(
    apiRoute(ctx, {
      operationId: "deleteShare",
      method: "delete",
      path: "/v1/sessions/{sid}/shares/{id}",
      summary: "Revoke a share link",
      description: "Its link answers 404 from now on; its connections in flight are cut.",
      tags: TAGS,
      auth: "session",
      request: { params: ShareParamsSchema },
      responses: { 204: { description: "Revoked." } },
      errors: [],
    }),
    (c) => {
      const p = c.req.valid("param");
      if (!registry.revoke(c.get("session"), p.id)) {
        throw new HttpProblem("ENOTFOUND", `no share "${p.id}" in session "${p.sid}"`);
      }
      return c.body(null, 204);
    },
  );
  return app;
}

/** 400 unless `address` is a host on the session's network other than the stack. */
function checkTarget(
  net: {
    ipv4: { address: number; prefixLength: number };
    ipv6: { prefix: Ipv6Address; address: Ipv6Address; linkLocal: Ipv6Address } | undefined;
  },
  address: string,
): void {
  if (address.includes(":")) return checkTarget6(net.ipv6, address);
  const ipv4 = net.ipv4;
  const a = parseIpv4Address(address);
  const subnet = `${formatIpv4Address(ipv4.address)}/${ipv4.prefixLength}`;
  const broadcast = ipv4SubnetBroadcast(ipv4.address, ipv4.prefixLength);
  const network = (broadcast - (2 ** (32 - ipv4.prefixLength) - 1)) >>> 0;
  if (!ipv4InSubnet(a, ipv4.address, ipv4.prefixLength) || a === broadcast || a === network) {
    throw new HttpProblem("EINVAL", `${address} is not a host of the session's network ${subnet}`);
  }
  if (a === ipv4.address) {
    throw new HttpProblem(
      "EINVAL",
      `${address} is the session's own address (the stack has no loopback)`,
    );
  }
}

/** {@linkcode checkTarget} for an IPv6 `address`. */
function checkTarget6(
  v6: { prefix: Ipv6Address; address: Ipv6Address; linkLocal: Ipv6Address } | undefined,
  address: string,
): void {
  if (v6 === undefined) throw new HttpProblem("EINVAL", `${address}: the session has no IPv6`);
  const a = parseIpv6Address(address);
  if (!isIpv6Unicast(a) || !(isIpv6LinkLocal(a) || ipv6InPrefix(a, v6.prefix, 64))) {
    throw new HttpProblem(
      "EINVAL",
      `${address} is not a host of the session's network ${formatIpv6Address(v6.prefix)}/64 ` +
        "(or fe80::/64)",
    );
  }
  if (a === v6.address || a === v6.linkLocal) {
    throw new HttpProblem(
      "EINVAL",
      `${address} is the session's own address (the stack has no loopback)`,
    );
  }
}

function shareUrl(c: Context, key: string, domain: ShareDomain | undefined): string {
  const origin = new URL(c.req.url);
  if (!domain) return `${origin.origin}/share/${key}/`;
  const scheme = domain.scheme ?? origin.protocol;
  return `${scheme}//${key}.${domain.host}${domain.port ? `:${domain.port}` : ""}/`;
}

/** What {@linkcode shareLinkMiddleware} needs. */
export interface ShareLinkOptions {
  /** The share domain, when host-based links are on. */
  domain?: string;
  /** The runtime's WebSocket upgrade. */
  upgradeWebSocket?: WebSocketUpgrader;
  /** The proxy's limits. */
  proxy?: ShareProxyOptions;
}

/**
 * Answers share links: `/share/<key>/…` and, with a share domain, any
 * request whose host is `<key>.<domain>`; everything else goes on to the
 * API. Unknown, malformed, revoked and expired keys answer the same 404.
 *
 * @example
 * ```ts
 * app.use(shareLinkMiddleware(shares, { domain: "share.example.com", upgradeWebSocket }));
 * ```
 */
export function shareLinkMiddleware(
  registry: ShareRegistry,
  options: ShareLinkOptions = {},
): MiddlewareHandler<AppEnv> {
  const domain = options.domain ? parseShareDomain(options.domain) : undefined;
  if (typeof domain === "string") throw new TypeError(`share domain: ${domain}`);
  const suffix = domain ? `.${domain.host}` : undefined;
  return async (c, next) => {
    const raw = c.req.url;
    // Without a share domain only a path under /share/ names a link: a URL that cannot parse
    // to one (no "share" in it, no tab or line break the URL parser would drop) is not one.
    if (!suffix && !raw.includes("share") && !NEWLINE_OR_TAB.test(raw)) return await next();
    const url = new URL(raw);
    let key: string | undefined;
    let target = "";
    let prefix: string | undefined;
    let label = SHARE_PATH_ROUTE;
    const host = (requestHeader(c.req.raw, "host") ?? url.host).toLowerCase();
    const hostname = host.replace(/:\d+$/, "");
    if (suffix && hostname.endsWith(suffix) && !hostname.slice(0, -suffix.length).includes(".")) {
      key = hostname.slice(0, -suffix.length);
      target = url.pathname + url.search;
      label = SHARE_HOST_ROUTE;
    } else if (!suffix && url.pathname.startsWith("/share/")) {
      // With a share domain, links live on their own origins only: never on the API's.
      const rest = url.pathname.slice("/share/".length);
      const slash = rest.indexOf("/");
      key = slash < 0 ? rest : rest.slice(0, slash);
      target = slash < 0 ? "" : rest.slice(slash) + url.search;
      prefix = `/share/${key}`;
    }
    if (key === undefined) return await next();
    (c as unknown as Context).set("routeLabel", label);
    const share = registry.lookup(key);
    if (!share) throw new HttpProblem("ENOTFOUND", "no such share link (or it expired)");
    if (target === "") {
      // `/share/<key>` without the slash: relative links of the app need it.
      return c.redirect(`${prefix}/${url.search}`, 308);
    }
    return await proxyShare({
      share,
      request: c.req.raw,
      target,
      forwarded: {
        for: clientAddress(c),
        host,
        proto: url.protocol.replace(":", ""),
        prefix,
      },
      upgradeWebSocket: options.upgradeWebSocket,
      options: options.proxy,
    });
  };
}

/**
 * Whether a request may be for a host-based share link under `domain`: its
 * host (the `Host` field, else the URL's) ends with `.<domain host>`. What
 * the share middleware answers is a subset of these; code that answers API
 * requests before the middleware runs (the lean socket path) leaves them to
 * it. Without a domain, no host names a link (path-based links live under
 * `/share/`).
 *
 * @example
 * ```ts
 * const mayBeShare = shareHostMatcher("share.example.com");
 * mayBeShare(new Request("http://k1.share.example.com/")); // true
 * ```
 */
export function shareHostMatcher(domain: string | undefined): (req: Request) => boolean {
  const parsed = domain ? parseShareDomain(domain) : undefined;
  if (typeof parsed === "string") throw new TypeError(`share domain: ${parsed}`);
  if (!parsed) return () => false;
  const suffix = `.${parsed.host}`;
  return (req) => {
    const host = (requestHeader(req, "host") ?? new URL(req.url).host).toLowerCase();
    return host.replace(/:\d+$/, "").endsWith(suffix);
  };
}

/**
 * The address the request came from: what the adapter's guard noted, else
 * what the runtime put in Hono's env (Deno's `remoteAddr`, Bun's `requestIP`).
 */
function clientAddress(c: Context<AppEnv>): string | undefined {
  const noted = requestPeer(c.req.raw);
  if (noted) return noted;
  const env = (c as unknown as { env?: unknown }).env as
    | {
      remoteAddr?: { hostname?: string };
      requestIP?: (r: Request) => { address?: string } | null;
    }
    | undefined;
  try {
    return env?.remoteAddr?.hostname ?? env?.requestIP?.(c.req.raw)?.address ?? undefined;
  } catch {
    return undefined;
  }
}

export { ShareRegistry };
