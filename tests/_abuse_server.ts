/**
 * Helpers of the abuse tests: a real server (Deno.serve on loopback, system
 * clock), sessions created over HTTP, a second netisle stack at 10.0.2.15
 * wired to a session's tunnel as its far side, and an authenticated `api`.
 *
 * @module
 */

import { serveDeno } from "../src/http/serve_deno.ts";
import { Session, SessionRegistry, SystemClock, type TunnelEndpoint } from "../src/session/mod.ts";
import type { SessionLimits } from "../src/session/session.ts";
import { parseIpv4Address, parseMacAddress } from "../src/wire/mod.ts";

/** A running server. */
export interface TestServer {
  base: string;
  registry: SessionRegistry;
  close(): Promise<void>;
}

/** Starts the app on 127.0.0.1 with an ephemeral port. */
export async function startServer(
  options: { sessionLimits?: Partial<SessionLimits>; bodyTimeoutMs?: number } = {},
): Promise<TestServer> {
  const registry = new SessionRegistry({
    clock: new SystemClock(),
    sessionLimits: options.sessionLimits,
  });
  const ac = new AbortController();
  let base = "";
  let server: { finished: Promise<void> } | undefined;
  await new Promise<void>((resolve) => {
    server = serveDeno({
      registry,
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      requestLog: false,
      bodyTimeoutMs: options.bodyTimeoutMs,
      onListen: (url) => {
        base = url;
        resolve();
      },
    });
  });
  return {
    base,
    registry,
    async close() {
      registry.close();
      ac.abort();
      await server?.finished;
    },
  };
}

/** A session created over HTTP, with its far side and an authenticated request function. */
export interface TestSession {
  id: string;
  token: string;
  session: Session;
  /** The far side of the session's network: a stack at 10.0.2.15. */
  peer: Session;
  api(
    method: string,
    path: string,
    init?: { json?: unknown; body?: BodyInit; signal?: AbortSignal; query?: string },
  ): Promise<Response>;
  close(): void;
}

/** A tunnel endpoint that hands frames to another session (one tick later, like a wire). */
export function wireTo(other: Session): TunnelEndpoint {
  return {
    description: "test wire",
    send: (frames) => setTimeout(() => other.input(frames.map((f) => f.slice())), 0),
    close: () => {},
  };
}

/** Creates a session through `POST /v1/sessions` and wires a peer stack to its tunnel. */
export async function openSession(server: TestServer): Promise<TestSession> {
  const res = await fetch(`${server.base}/v1/sessions`, { method: "POST" });
  if (res.status !== 201) throw new Error(`creating a session answered ${res.status}`);
  const created = await res.json();
  const session = server.registry.get(created.id)!;
  const peer = new Session({
    id: `peer_${created.id}`,
    token: "peer",
    clock: new SystemClock(),
    stack: {
      mac: parseMacAddress("52:54:00:12:34:56"),
      ipv4: { address: parseIpv4Address("10.0.2.15"), prefixLength: 24 },
      mtu: 1500,
    },
  });
  session.attachTunnel(wireTo(peer));
  peer.attachTunnel(wireTo(session));
  return {
    id: created.id,
    token: created.token,
    session,
    peer,
    api(method, path, init = {}) {
      const headers: Record<string, string> = { authorization: `Bearer ${created.token}` };
      let body = init.body;
      if (init.json !== undefined) {
        body = JSON.stringify(init.json);
        headers["content-type"] = "application/json";
      }
      const q = init.query ? `?${init.query}` : "";
      return fetch(`${server.base}/v1/sessions/${created.id}${path}${q}`, {
        method,
        headers,
        body,
        signal: init.signal,
      });
    },
    close() {
      peer.close();
    },
  };
}

/** Heap in use, in MiB (where the runtime reports it). */
export function heapMiB(): number {
  return Math.round(
    ((globalThis as { process?: { memoryUsage(): { heapUsed: number } } })
      .process?.memoryUsage().heapUsed ?? 0) / 2 ** 20,
  );
}
