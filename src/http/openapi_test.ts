import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ManualClock, SessionRegistry } from "../session/mod.ts";
import { createApp } from "./app.ts";

function setup() {
  const registry = new SessionRegistry({ clock: new ManualClock(0) });
  const app = createApp({ registry, requestLog: false });
  return { registry, app };
}

// deno-lint-ignore no-explicit-any
type Doc = any;

/** `/v1/sessions/:sid` → `/v1/sessions/{sid}`. */
function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

async function doc(): Promise<Doc> {
  const { app } = setup();
  const res = await app.request("/openapi.json");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  return await res.json();
}

const SOCKET_ROUTES = [
  ["get", "/v1/sessions/{sid}/sockets"],
  ["post", "/v1/sessions/{sid}/sockets"],
  ["get", "/v1/sessions/{sid}/sockets/{id}"],
  ["delete", "/v1/sessions/{sid}/sockets/{id}"],
  ["post", "/v1/sessions/{sid}/sockets/{id}/bind"],
  ["post", "/v1/sessions/{sid}/sockets/{id}/listen"],
  ["post", "/v1/sessions/{sid}/sockets/{id}/accept"],
  ["post", "/v1/sessions/{sid}/sockets/{id}/connect"],
  ["post", "/v1/sessions/{sid}/sockets/{id}/send"],
  ["post", "/v1/sessions/{sid}/sockets/{id}/recv"],
  ["post", "/v1/sessions/{sid}/sockets/{id}/shutdown"],
  ["get", "/v1/sessions/{sid}/sockets/{id}/stream"],
] as const;

describe("GET /openapi.json", () => {
  it("is an OpenAPI 3.1 document listing exactly the routes the app serves", async () => {
    const d = await doc();
    assert.equal(d.openapi, "3.1.0");
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(d.paths as Record<string, object>)) {
      for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${path}`);
    }
    const { app } = setup();
    const served = new Set(
      app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${openApiPath(r.path)}`),
    );
    assert.deepEqual([...documented].sort(), [...served].sort());
    for (const [method, path] of SOCKET_ROUTES) {
      assert.ok(d.paths[path]?.[method], `${method} ${path}`);
    }
    const ids = Object.values(d.paths as Record<string, Record<string, Doc>>)
      .flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    assert.equal(ids.length, documented.size);
    assert.equal(new Set(ids).size, ids.length, "operationIds are unique");
  });

  it("documents every path parameter, query parameter and JSON body from the zod schemas", async () => {
    const d = await doc();
    for (const [method, path] of SOCKET_ROUTES) {
      const op = d.paths[path][method];
      const names = op.parameters.filter((p: Doc) => p.in === "path").map((p: Doc) => p.name);
      assert.deepEqual(names, path.includes("{id}") ? ["sid", "id"] : ["sid"], `${method} ${path}`);
      for (const p of op.parameters.filter((p: Doc) => p.in === "path")) {
        assert.equal(p.required, true);
        assert.equal(typeof p.schema.pattern, "string");
      }
    }
    const recv = d.paths["/v1/sessions/{sid}/sockets/{id}/recv"].post;
    const q = Object.fromEntries(
      recv.parameters.filter((p: Doc) => p.in === "query").map((p: Doc) => [p.name, p]),
    );
    assert.deepEqual(Object.keys(q).sort(), ["maxBytes", "timeoutMs"]);
    assert.equal(q.maxBytes.required, false);
    assert.equal(q.maxBytes.schema.maximum, 1024 * 1024);
    assert.ok(recv.responses["200"].headers["Netisle-Eof"]);
    assert.ok(recv.responses["204"]);
    assert.ok(recv.responses["200"].content["application/octet-stream"]);

    const connect = d.paths["/v1/sessions/{sid}/sockets/{id}/connect"].post;
    const body: Doc = connect.requestBody.content["application/json"].schema;
    assert.deepEqual([...body.required].sort(), ["address", "port"]);
    assert.equal(body.properties.port.maximum, 65535);
    assert.equal(body.additionalProperties, false);
    assert.deepEqual(body.properties.address.anyOf.map((s: Doc) => s.format), ["ipv4", "ipv6"]);
    assert.deepEqual(
      [body.properties.timeoutMs.type, body.properties.timeoutMs.minimum],
      ["integer", 0],
    );

    const send = d.paths["/v1/sessions/{sid}/sockets/{id}/send"].post;
    assert.ok(send.requestBody.content["application/octet-stream"]);
    const create = d.paths["/v1/sessions/{sid}/sockets"].post;
    assert.deepEqual(
      create.requestBody.content["application/json"].schema.properties.protocol.enum,
      ["tcp", "udp"],
    );
  });

  it("lists the problem+json responses with their codes, and the security of each route", async () => {
    const d = await doc();
    const connect = d.paths["/v1/sessions/{sid}/sockets/{id}/connect"].post;
    for (const status of ["400", "401", "404", "409", "413", "429", "502", "504"]) {
      const r = connect.responses[status];
      assert.ok(r, status);
      assert.deepEqual(r.content["application/problem+json"].schema, {
        $ref: "#/components/schemas/Problem",
      });
    }
    assert.match(connect.responses["502"].description, /ECONNREFUSED/);
    assert.match(connect.responses["409"].description, /EISCONN/);
    assert.deepEqual(connect.security, [{ sessionToken: [] }]);
    const stream = d.paths["/v1/sessions/{sid}/sockets/{id}/stream"].get;
    assert.equal(stream["x-websocket"], true);
    assert.deepEqual(stream.security, [{ sessionToken: [] }, { sessionTokenQuery: [] }]);
    assert.deepEqual(d.paths["/healthz"].get.security, []);
    assert.ok(d.components.schemas.Problem.properties.code);
  });

  it("the document and the validation agree: what the schema forbids answers 400", async () => {
    const { app, registry } = setup();
    const s = registry.create({});
    const auth = { authorization: `Bearer ${s.token}`, "content-type": "application/json" };
    const created = await app.request(`/v1/sessions/${s.id}/sockets`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ protocol: "tcp" }),
    });
    const { id } = await created.json();
    const res = await app.request(`/v1/sessions/${s.id}/sockets/${id}/connect`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ address: "10.0.2.15", port: 65536 }),
    });
    assert.equal(res.status, 400);
  });
});

/**
 * The document of main before the move to `@hono/zod-openapi` (commit
 * e9f328e, `GET /openapi.json`), kept to make drift visible.
 */
const BEFORE: Doc = JSON.parse(
  readFileSync(new URL("./testdata/openapi_e9f328e.json", import.meta.url), "utf8"),
);

/**
 * What a client of the document relies on, per operation: its names and
 * auth, every parameter with its schema, the request body and its schema,
 * and every response status with its description, content types and
 * header names. (Response body schemas are left out: the generator writes
 * the same shapes in other words, e.g. `type: ["object", "null"]` for
 * `anyOf [..., {type: null}]`.)
 */
function skeleton(doc: Doc): Record<string, Doc> {
  const out: Record<string, Doc> = {};
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, Doc>>)) {
    for (const [method, op] of Object.entries(ops)) {
      out[`${method.toUpperCase()} ${path}`] = {
        operationId: op.operationId,
        summary: op.summary,
        description: op.description,
        tags: op.tags,
        security: op.security,
        websocket: op["x-websocket"] === true,
        parameters: (op.parameters ?? []).map((p: Doc) => {
          const { description: _, ...schema } = p.schema;
          return {
            name: p.name,
            in: p.in,
            required: p.required,
            description: p.description,
            schema,
          };
        }),
        requestBody: op.requestBody && {
          required: op.requestBody.required,
          description: op.requestBody.description,
          content: op.requestBody.content,
        },
        responses: Object.fromEntries(
          Object.entries(op.responses as Record<string, Doc>).map(([status, r]) => [status, {
            description: r.description,
            content: Object.keys(r.content ?? {}),
            example: r.content?.["application/problem+json"]?.example,
            headers: Object.keys(r.headers ?? {}),
          }]),
        ),
      };
    }
  }
  return out;
}

describe("the OpenAPI document against main's (drift is visible)", () => {
  it("has the same operations, parameters, bodies and statuses, with the named changes", async () => {
    const now = skeleton(await doc());
    const before = skeleton(BEFORE);
    // Issue 16 added operations: the Wisp server and the share links.
    const added = Object.keys(now).filter((k) => /\{sid\}\/(wisp|shares)/.test(k));
    assert.ok(added.includes("GET /v1/sessions/{sid}/wisp/"), added.join(", "));
    for (const k of added) delete now[k];
    assert.deepEqual(Object.keys(now), Object.keys(before), "the same operations, in order");
    // The named improvements: a body on a session route is charged to the session's memory
    // quota before it is read, so every such route documents 429 ENOBUFS (send listed it) ...
    const send = before["POST /v1/sessions/{sid}/sockets/{id}/send"];
    assert.equal(send.responses["429"].description, "Problem: ENOBUFS");
    const withBody = Object.entries(before).filter(([k, op]) =>
      op.requestBody && k !== "POST /v1/sessions" && op !== send
    );
    assert.equal(withBody.length, 6);
    for (const [, op] of withBody) {
      const r = op.responses["429"];
      if (r) {
        r.description = r.description.replace("Problem: ", "Problem: ENOBUFS, ");
        r.example = { code: "ENOBUFS" };
      } else {
        op.responses["429"] = {
          description: "Problem: ENOBUFS",
          content: ["application/problem+json"],
          example: { code: "ENOBUFS" },
          headers: [],
        };
      }
    }
    // ... and send says so in its description.
    send.description += " The body counts against the session's memory quota from before it " +
      "is read until the send returns (429 ENOBUFS when it does not fit).";
    // Egress (issue 13): a session may be created with `{"egress": false}` (or true).
    const createBody = (op: Doc) => op.requestBody.content["application/json"].schema;
    const egressField = createBody(now["POST /v1/sessions"]).properties.egress;
    assert.equal(egressField.type, "boolean");
    assert.match(egressField.description, /NETISLE_EGRESS/);
    createBody(before["POST /v1/sessions"]).properties.egress = egressField;
    // The stream route also speaks netisle.stream.v1 (issue 14), for TCP and UDP sockets.
    const stream = before["GET /v1/sessions/{sid}/sockets/{id}/stream"];
    stream.summary =
      "Stream a TCP connection (or, with netisle.stream.v1, a UDP socket) over a WebSocket";
    stream.description += " With the subprotocol `netisle.stream.v1` every message starts with " +
      "a type byte (DATA, ACK, FIN, OPEN, ERROR): credit-based flow control both ways, a " +
      "half-close each way, UDP sockets one datagram per message, and the stream owns the " +
      'socket (README, "The stream protocol").';
    // Session creation takes the DHCP server's settings (issue 11): true, false or an object.
    const create = before["POST /v1/sessions"];
    create.requestBody.content = now["POST /v1/sessions"].requestBody.content;
    const dhcp = create.requestBody.content["application/json"].schema.properties.dhcp;
    assert.deepEqual(dhcp.anyOf.map((s: Doc) => s.type), ["boolean", "object"]);
    assert.deepEqual(Object.keys(dhcp.anyOf[1].properties), [
      "poolSize",
      "leasesPerMac",
      "leaseSeconds",
    ]);
    // IPv6 (issue 17): bind, connect and a UDP send take an address of either family.
    const addressOf = (k: string) => {
      const op = now[k];
      const body = op.requestBody?.content["application/json"]?.schema;
      return body ? body.properties.address : op.parameters.find((p: Doc) => p.name === "address");
    };
    for (const k of ["bind", "connect"].map((o) => `POST /v1/sessions/{sid}/sockets/{id}/${o}`)) {
      const a = addressOf(k);
      assert.deepEqual(a.anyOf.map((s: Doc) => s.format), ["ipv4", "ipv6"], k);
      before[k].requestBody.content["application/json"].schema.properties.address = a;
    }
    const sendAddress = now["POST /v1/sessions/{sid}/sockets/{id}/send"].parameters.find((
      p: Doc,
    ) => p.name === "address");
    assert.deepEqual(sendAddress.schema.anyOf.map((s: Doc) => s.format), ["ipv4", "ipv6"]);
    const beforeSend = send.parameters.find((p: Doc) => p.name === "address");
    beforeSend.schema = sendAddress.schema;
    beforeSend.description = sendAddress.description;
    // /metrics is text (a string, not binary); /openapi.json is a JSON object.
    assert.deepEqual(now["GET /metrics"].responses["200"].content, ["text/plain"]);
    assert.deepEqual(now["GET /openapi.json"].responses["200"].content, ["application/json"]);
    for (const [key, op] of Object.entries(now)) {
      assert.deepEqual(op, before[key], key);
    }
  });

  it("keeps the shared parts: info, tags, security schemes and the Problem schema's fields", async () => {
    const d = await doc();
    assert.equal(d.openapi, BEFORE.openapi);
    assert.deepEqual(d.info, BEFORE.info);
    assert.deepEqual(d.tags, BEFORE.tags);
    assert.deepEqual(d.components.securitySchemes, BEFORE.components.securitySchemes);
    const problem = d.components.schemas.Problem;
    assert.deepEqual(problem.required, BEFORE.components.schemas.Problem.required);
    assert.deepEqual(
      Object.keys(problem.properties),
      Object.keys(BEFORE.components.schemas.Problem.properties),
    );
  });
});

describe("GET /docs", () => {
  it("is a self-contained HTML page that renders /openapi.json (no external assets)", async () => {
    const { app } = setup();
    const res = await app.request("/docs");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/html/);
    const html = await res.text();
    assert.match(html, /fetch\("\/openapi\.json"\)/);
    assert.doesNotMatch(html, /<script[^>]+src=/);
    assert.doesNotMatch(html, /<link[^>]+href=/);
    assert.doesNotMatch(html, /https?:\/\//);
  });
});
