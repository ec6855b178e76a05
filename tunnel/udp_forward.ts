/**
 * UDP port forwards of `netisle forward`, built on the client SDK. UDP has no
 * connections, so each forward keeps flows: one per peer address, with its
 * own socket on the far side, ended after `idleMs` without traffic.
 *
 * - local (`-U`, `-L …/udp`): a UDP socket here; datagrams from each local
 *   client go to HOST:PORT in the session from a session socket of its own
 *   (connected to HOST:PORT), and the answers come back to that client;
 * - remote (`-R …/udp`): a UDP socket on the stack's PORT; datagrams from
 *   each tunnelled client go to HOST:PORT here from a local socket of its
 *   own, and the answers go back to that client through the stack.
 *
 * A flow whose stream WebSocket drops is forgotten; the next datagram opens a
 * new one. The remote socket is opened again (with backoff) when its stream
 * drops.
 *
 * @module
 */

import dgram from "node:dgram";
import type { NetisleUdpSocket } from "../src/client/mod.ts";
import { NetisleError } from "../src/client/mod.ts";
import { CliError, describeCode } from "./cli_common.ts";
import { forwardLabel, type ForwardSpec } from "./forward_spec.ts";
import type { ForwardContext, RunningForward } from "./tcp_forward.ts";

/** Options of the UDP forwards. */
export interface UdpForwardOptions {
  /** A flow without traffic this long ends (ms). Default 60000. */
  idleMs?: number;
  /** Most flows at once; the least recently used ends first. Default 64. */
  maxFlows?: number;
}

/** Datagrams a flow holds while its far side opens. */
const MAX_PENDING = 64;

function reason(err: unknown): string {
  const code = (err as { code?: string })?.code;
  return code ? `${describeCode(code)} (${code})` : String((err as Error)?.message ?? err);
}

interface Flow {
  key: string;
  last: number;
  close(): void;
}

/** The flows of one forward: least recently used first, swept when idle. */
class Flows<F extends Flow> {
  #map = new Map<string, F>();
  #timer: ReturnType<typeof setInterval>;
  constructor(readonly idleMs: number, readonly max: number, readonly onEnd: (f: F) => void) {
    this.#timer = setInterval(() => {
      const now = Date.now();
      for (const f of this.#map.values()) if (now - f.last > this.idleMs) this.end(f);
    }, Math.min(5000, idleMs));
  }
  get size(): number {
    return this.#map.size;
  }
  get(key: string): F | undefined {
    const f = this.#map.get(key);
    if (f) {
      f.last = Date.now();
      this.#map.delete(key);
      this.#map.set(key, f); // most recently used last
    }
    return f;
  }
  add(f: F): void {
    if (this.#map.size >= this.max) this.end(this.#map.values().next().value!);
    this.#map.set(f.key, f);
  }
  end(f: F): void {
    if (this.#map.get(f.key) !== f) return;
    this.#map.delete(f.key);
    f.close();
    this.onEnd(f);
  }
  closeAll(): void {
    clearInterval(this.#timer);
    for (const f of [...this.#map.values()]) this.end(f);
  }
}

/**
 * Starts a local UDP forward; rejects with a CliError when the port cannot be bound.
 *
 * @example
 * ```ts
 * await startLocalUdp(ctx, parseForwardSpec("local", "5353:10.0.2.15:53", "udp"));
 * ```
 */
export async function startLocalUdp(
  ctx: ForwardContext,
  spec: ForwardSpec,
  options: UdpForwardOptions = {},
): Promise<RunningForward> {
  const sock = dgram.createSocket(spec.bindAddress?.includes(":") ? "udp6" : "udp4");
  let label = forwardLabel(spec);
  interface LocalFlow extends Flow {
    udp: NetisleUdpSocket | undefined;
    pending: Uint8Array[];
    failed: boolean;
  }
  const flows = new Flows<LocalFlow>(options.idleMs ?? 60_000, options.maxFlows ?? 64, (f) => {
    ctx.stats.open--;
    if (f.failed) ctx.stats.failed++;
    else ctx.stats.done++;
  });
  const open = (key: string, address: string, port: number): LocalFlow => {
    const flow: LocalFlow = {
      key,
      last: Date.now(),
      udp: undefined,
      pending: [],
      failed: false,
      close: () => void flow.udp?.close().catch(() => {}),
    };
    ctx.stats.open++;
    flows.add(flow);
    ctx.session.udp({
      remote: { hostname: spec.host, port: spec.port },
      onError: (err) => ctx.log.line(`${label}: ${key}: ${reason(err)}`),
    }).then(async (udp) => {
      flow.udp = udp;
      if (flows.get(key) !== flow) {
        await udp.close().catch(() => {});
        return;
      }
      for (const d of flow.pending.splice(0)) await udp.send(d).catch(() => {});
      for await (const d of udp) {
        flow.last = Date.now();
        ctx.stats.bytesOut += d.data.length;
        sock.send(d.data, port, address);
      }
      await udp.closed;
    }).catch((err) => {
      flow.failed = true;
      ctx.log.line(`${label}: ${key}: ${reason(err)}`);
    }).finally(() => flows.end(flow));
    return flow;
  };
  sock.on("message", (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    const flow = flows.get(key) ?? open(key, rinfo.address, rinfo.port);
    ctx.stats.bytesIn += msg.length;
    const data = new Uint8Array(msg);
    if (flow.udp) flow.udp.send(data).catch(() => {});
    else if (flow.pending.length < MAX_PENDING) flow.pending.push(data);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once("error", (err) => reject(new CliError(`${label}: cannot bind: ${reason(err)}`)));
    sock.bind(spec.bindPort, spec.bindAddress ?? "127.0.0.1", () => resolve());
  });
  label = forwardLabel(spec, sock.address().port);
  return {
    label,
    close: () => {
      flows.closeAll();
      return new Promise<void>((r) => sock.close(() => r()));
    },
  };
}

/**
 * Starts a remote UDP forward: a socket on the stack's port (CliError when it
 * is taken), opened again with backoff when its stream drops.
 *
 * @example
 * ```ts
 * await startRemoteUdp(ctx, parseForwardSpec("remote", "5353:127.0.0.1:53/udp"));
 * ```
 */
export async function startRemoteUdp(
  ctx: ForwardContext,
  spec: ForwardSpec,
  options: UdpForwardOptions = {},
): Promise<RunningForward> {
  let label = forwardLabel(spec);
  interface RemoteFlow extends Flow {
    sock: dgram.Socket;
  }
  let stack: NetisleUdpSocket;
  const flows = new Flows<RemoteFlow>(options.idleMs ?? 60_000, options.maxFlows ?? 64, () => {
    ctx.stats.open--;
    ctx.stats.done++;
  });
  const bind = () =>
    ctx.session.udp({
      port: spec.bindPort,
      onError: (err) => ctx.log.line(`${label}: ${reason(err)}`),
    });
  try {
    stack = await bind();
  } catch (err) {
    throw new CliError(`${label}: cannot bind on the stack: ${reason(err)}`);
  }
  if (stack.local) label = forwardLabel({ ...spec, bindAddress: stack.local.address });
  let closed = false;
  const flowFor = (address: string, port: number): RemoteFlow => {
    const key = `${address}:${port}`;
    const existing = flows.get(key);
    if (existing) return existing;
    const sock = dgram.createSocket("udp4");
    const flow: RemoteFlow = { key, last: Date.now(), sock, close: () => sock.close() };
    sock.on("message", (msg) => {
      flow.last = Date.now();
      ctx.stats.bytesIn += msg.length;
      stack.send(new Uint8Array(msg), { hostname: address, port }).catch(() => {});
    });
    sock.on("error", (err) => ctx.log.line(`${label}: ${key}: ${reason(err)}`));
    ctx.stats.open++;
    flows.add(flow);
    return flow;
  };
  (async () => {
    let delay = 250;
    while (!closed) {
      try {
        for await (const d of stack) {
          delay = 250;
          ctx.stats.bytesOut += d.data.length;
          flowFor(d.address, d.port).sock.send(d.data, spec.port, spec.host);
        }
        await stack.closed;
      } catch (err) {
        if (closed) return;
        ctx.log.line(`${label}: the stream dropped: ${reason(err)}`);
      }
      if (closed) return;
      for (;;) {
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(10_000, delay * 2);
        if (closed) return;
        try {
          stack = await bind();
          ctx.log.line(`${label}: bound again`);
          break;
        } catch (err) {
          if (err instanceof NetisleError && err.code === "ENOTFOUND") {
            ctx.log.line(`${label}: the session is gone; stopping`);
            return;
          }
          ctx.log.line(`${label}: cannot bind again: ${reason(err)}; retrying`);
        }
      }
    }
  })();
  return {
    label,
    close: async () => {
      closed = true;
      flows.closeAll();
      await stack.close().catch(() => {});
    },
  };
}
