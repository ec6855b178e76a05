/**
 * Test helpers for the socket routes: an app over a registry on a manual
 * clock, one session at 10.0.2.2 with a recording tunnel and a known peer,
 * and a `call` that sends requests with the session's token.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { z } from "zod";
import { ManualClock, SessionRegistry } from "../session/mod.ts";
import type { SessionLimits } from "../session/session.ts";
import { RecordingTunnel } from "../socket/_session_peer_test_util.ts";
import {
  HARNESS_PEER_IP,
  HARNESS_PEER_MAC,
  HARNESS_STACK_IP,
  HARNESS_STACK_MAC,
} from "../stack/tcp/tcp_harness.ts";
import { type AppOptions, createApp } from "./app.ts";

/** Options of {@linkcode socketApi}. */
export interface SocketApiOptions {
  sessionLimits?: Partial<SessionLimits>;
  app?: Partial<AppOptions>;
}

/** Request options of `call`. */
export interface CallOptions {
  json?: unknown;
  body?: BodyInit;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  token?: string | null;
  signal?: AbortSignal;
}

/** An app with one ready session. */
export function socketApi(options: SocketApiOptions = {}) {
  const clock = new ManualClock(1000);
  const registry = new SessionRegistry({ clock, sessionLimits: options.sessionLimits });
  const app = createApp({ registry, clock, requestLog: false, ...options.app });
  const session = registry.create({
    mac: HARNESS_STACK_MAC,
    ipv4: { address: HARNESS_STACK_IP, prefixLength: 24 },
  });
  const tunnel = new RecordingTunnel(session);
  session.attachTunnel(tunnel);
  session.withCore((stack, now) => stack.arp.update(HARNESS_PEER_IP, HARNESS_PEER_MAC, now));
  tunnel.frames = [];

  /** Sends `method path` (relative to the session) with the session's token. */
  const call = (method: string, path: string, o: CallOptions = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    const token = o.token === undefined ? session.token : o.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body = o.body;
    if (o.json !== undefined) {
      body = JSON.stringify(o.json);
      headers["content-type"] = "application/json";
    }
    const qs = o.query ? "?" + new URLSearchParams(o.query).toString() : "";
    const url = `http://localhost/v1/sessions/${session.id}${path}${qs}`;
    return app.request(new Request(url, { method, headers, body, signal: o.signal }));
  };

  /** Creates a socket and returns its id. */
  const create = async (protocol: "tcp" | "udp") => {
    const res = await call("POST", "/sockets", { json: { protocol } });
    assert.equal(res.status, 201);
    return (await res.json()).id as string;
  };

  return { clock, registry, app, session, tunnel, call, create };
}

/** Asserts a problem+json response with `status`, `code` and (optionally) a detail naming `field`. */
export async function assertProblem(
  res: Response,
  status: number,
  code: string,
  field?: string,
): Promise<{ detail: string; issues?: unknown[] }> {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}`);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const p = await res.json();
  assert.equal(p.code, code);
  assert.equal(p.status, status);
  if (field !== undefined) {
    assert.match(p.detail, new RegExp(`\\b${field}\\b`), `detail names ${field}: ${p.detail}`);
    assert.ok(Array.isArray(p.issues) && p.issues.length > 0);
  }
  return p;
}

/** Parses a JSON response with the route's response schema (the document's promise). */
export async function jsonAs<T extends z.ZodType>(res: Response, schema: T): Promise<z.output<T>> {
  const body = await res.json();
  const r = schema.safeParse(body);
  assert.ok(r.success, `response matches its schema: ${JSON.stringify(r.error?.issues)}`);
  return r.data as z.output<T>;
}
