/**
 * The OpenAPI 3.1 document of the HTTP API. `@hono/zod-openapi` builds it
 * from the routes the app registers (`app.openapi(...)`): the same zod
 * schemas that validate requests become its parameter, body and response
 * schemas, so the document cannot drift from the routes. This module adds
 * what is shared by every route — the problem+json schema, the security
 * schemes, the tags and the document's info — and the `/docs` page, a
 * self-contained HTML page (no CDN) that renders the document.
 *
 * @module
 */

import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";

/** The OpenAPI document as served on `/openapi.json`. */
export type OpenApiDocument = ReturnType<OpenAPIHono["getOpenAPI31Document"]>;

/** Metadata of {@linkcode openApiDocument}. */
export interface OpenApiInfo {
  /** Default `netisle`. */
  title?: string;
  /** Default `1`. */
  version?: string;
  /** Default: a paragraph about netisle. */
  description?: string;
}

/** The problem+json body (RFC 9457) every error response carries. */
export const ProblemSchema = z.object({
  type: z.literal("about:blank"),
  title: z.string(),
  status: z.int(),
  code: z.string().describe("Stable errno-style code (EINVAL, ENOTCONN, ETIMEDOUT, ...)."),
  detail: z.string().describe("What failed, quoting the value."),
  issues: z.array(z.unknown()).optional().describe("zod's issues, for validation errors."),
});

/** The groups of operations, in the order the document lists them. */
export const OPENAPI_TAGS: ReadonlyArray<{ name: string; description: string }> = [
  { name: "sessions", description: "Sessions: one isolated stack each, reached through a tunnel." },
  {
    name: "sockets",
    description: "Sockets inside a session's network (TCP and UDP), over HTTP or a WebSocket.",
  },
  { name: "service", description: "Service endpoints." },
];

/**
 * Registers the components every route refers to: the `Problem` schema of
 * error responses and the security schemes of `route_auth.ts`.
 *
 * @example
 * ```ts
 * const app = new OpenAPIHono<AppEnv>();
 * registerOpenApiComponents(app);
 * ```
 */
// deno-lint-ignore no-explicit-any
export function registerOpenApiComponents(app: OpenAPIHono<any, any, any>): void {
  const registry = app.openAPIRegistry;
  registry.register("Problem", ProblemSchema);
  registry.registerComponent("securitySchemes", "sessionToken", {
    type: "http",
    scheme: "bearer",
    description: "The token returned when the session was created.",
  });
  registry.registerComponent("securitySchemes", "sessionTokenQuery", {
    type: "apiKey",
    in: "query",
    name: "token",
    description: "The session token, for WebSocket clients that cannot set headers.",
  });
  registry.registerComponent("securitySchemes", "adminToken", {
    type: "http",
    scheme: "bearer",
    description: "Required when the server runs with NETISLE_ADMIN_TOKEN.",
  });
  registry.registerComponent("securitySchemes", "metricsToken", {
    type: "http",
    scheme: "bearer",
    description: "Required when the server runs with a metrics token.",
  });
}

/**
 * Generates the OpenAPI 3.1 document of `app`'s routes.
 *
 * @example
 * ```ts
 * const doc = openApiDocument(app, { version: "0.1.0" });
 * doc.paths?.["/v1/sessions/{sid}/sockets"]?.post; // createSocket
 * ```
 */
export function openApiDocument(
  // deno-lint-ignore no-explicit-any
  app: OpenAPIHono<any, any, any>,
  info: OpenApiInfo = {},
): OpenApiDocument {
  return app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: info.title ?? "netisle",
      version: info.version ?? "1",
      description: info.description ??
        "A user-space TCP/IP stack per session, reached through a WebSocket tunnel of Ethernet " +
          "frames; this API creates sessions and opens TCP and UDP sockets inside their " +
          "networks. Errors are application/problem+json (RFC 9457) with a stable `code`.",
    },
    tags: [...OPENAPI_TAGS],
  });
}

/**
 * The `/docs` page: plain HTML with a small inline script that fetches
 * `/openapi.json` and lists every route with its parameters, body, responses
 * and schemas. Self-contained: no CDN, no external asset.
 */
export function docsPage(openApiUrl = "/openapi.json"): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netisle API</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem 1.5rem; color: #1d2430; }
  h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #d5dae1; }
  details.op { border: 1px solid #d5dae1; border-radius: 6px; margin: 0.5rem 0; background: #fbfcfd; }
  details.op > summary { cursor: pointer; padding: 0.45rem 0.7rem; list-style: none; }
  details.op[open] > summary { border-bottom: 1px solid #d5dae1; }
  .body { padding: 0.3rem 0.9rem 0.8rem; }
  .m { display: inline-block; min-width: 4.2rem; font-weight: 700; font-family: ui-monospace, monospace; }
  .GET { color: #1a6fb5; } .POST { color: #1e8a4c; } .DELETE { color: #b5301a; }
  code, pre { font-family: ui-monospace, monospace; font-size: 13px; }
  pre { background: #f1f3f6; padding: 0.5rem; overflow-x: auto; border-radius: 4px; }
  table { border-collapse: collapse; margin: 0.3rem 0; }
  td, th { border: 1px solid #d5dae1; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }
  .muted { color: #5b6675; } .ws { background: #efe6fb; color: #5b2d91; border-radius: 3px; padding: 0 0.3rem; font-size: 12px; }
</style>
</head>
<body>
<h1>netisle API</h1>
<p class="muted">Rendered from <a href="${openApiUrl}"><code>${openApiUrl}</code></a>, generated from the
zod schemas that validate the requests.</p>
<div id="doc">Loading…</div>
<script>
"use strict";
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const md = (s) => esc(s).replace(/\`([^\`]+)\`/g, "<code>$1</code>");
const json = (v) => "<pre>" + esc(JSON.stringify(v, null, 2)) + "</pre>";
function params(list) {
  if (!list || list.length === 0) return "";
  let h = "<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th>schema</th><th>description</th></tr>";
  for (const p of list) {
    h += "<tr><td><code>" + esc(p.name) + "</code></td><td>" + esc(p.in) + "</td><td>" + (p.required ? "yes" : "no") +
      "</td><td><code>" + esc(JSON.stringify(p.schema)) + "</code></td><td>" + md(p.description || "") + "</td></tr>";
  }
  return h + "</table>";
}
function content(c) {
  if (!c) return "";
  let h = "";
  for (const [type, v] of Object.entries(c)) h += "<div><code>" + esc(type) + "</code></div>" + (v.schema ? json(v.schema) : "");
  return h;
}
function operation(path, method, op) {
  let h = '<details class="op"><summary><span class="m ' + method.toUpperCase() + '">' + method.toUpperCase() +
    "</span> <code>" + esc(path) + "</code> — " + esc(op.summary || "") + (op["x-websocket"] ? ' <span class="ws">WebSocket</span>' : "") +
    '</summary><div class="body">';
  if (op.description) h += "<p>" + md(op.description) + "</p>";
  const sec = (op.security || []).map((s) => Object.keys(s)[0]).filter(Boolean);
  h += "<p class='muted'>Auth: " + (sec.length ? sec.map(esc).join(" or ") : "none") + "</p>";
  h += params(op.parameters);
  if (op.requestBody) h += "<h4>Request body</h4>" + (op.requestBody.description ? "<p>" + md(op.requestBody.description) + "</p>" : "") + content(op.requestBody.content);
  h += "<h4>Responses</h4><table><tr><th>status</th><th>description</th><th>body</th></tr>";
  for (const [status, r] of Object.entries(op.responses || {})) {
    let hdrs = "";
    if (r.headers) hdrs = "<div>Headers: " + Object.entries(r.headers).map(([n, v]) => "<code>" + esc(n) + "</code> " + md(v.description || "")).join("; ") + "</div>";
    h += "<tr><td>" + esc(status) + "</td><td>" + md(r.description || "") + hdrs + "</td><td>" + content(r.content) + "</td></tr>";
  }
  return h + "</table></div></details>";
}
fetch(${JSON.stringify(openApiUrl)}).then((r) => r.json()).then((doc) => {
  let h = "<p>" + md(doc.info.description || "") + "</p><p class='muted'>OpenAPI " + esc(doc.openapi) + ", version " + esc(doc.info.version) + "</p>";
  const byTag = new Map();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(path, method, op));
    }
  }
  for (const t of doc.tags || []) {
    if (!byTag.has(t.name)) continue;
    h += "<h2>" + esc(t.name) + "</h2><p class='muted'>" + md(t.description || "") + "</p>" + byTag.get(t.name).join("");
    byTag.delete(t.name);
  }
  for (const [tag, ops] of byTag) h += "<h2>" + esc(tag) + "</h2>" + ops.join("");
  h += "<h2>Schemas</h2>";
  for (const [name, s] of Object.entries(doc.components.schemas || {})) h += "<h3>" + esc(name) + "</h3>" + json(s);
  document.getElementById("doc").innerHTML = h;
}).catch((err) => { document.getElementById("doc").textContent = "Could not load the document: " + err; });
</script>
</body>
</html>
`;
}
