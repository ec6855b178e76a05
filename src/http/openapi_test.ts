import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock, SessionRegistry } from "../session/mod.ts";
import { apiRoutes, createApp } from "./app.ts";
import { jsonSchemaOf, openApiPath } from "./openapi.ts";
import { ConnectBodySchema } from "./socket_schemas.ts";

function setup() {
  const registry = new SessionRegistry({ clock: new ManualClock(0) });
  const app = createApp({ registry, requestLog: false });
  return { registry, app };
}

// deno-lint-ignore no-explicit-any
type Doc = any;

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
    const ids = apiRoutes({ registry: setup().registry }).map((r) => r.operationId);
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
    assert.deepEqual(body, jsonSchemaOf(ConnectBodySchema, "input"));

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
