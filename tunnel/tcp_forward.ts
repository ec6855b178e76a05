/**
 * TCP port forwards of `netisle forward`, built on the client SDK:
 *
 * - local (`-L`): a listener on this machine; each connection it accepts
 *   becomes a connection from the session's stack to HOST:PORT;
 * - remote (`-R`): a listener on the stack (the tunnelled machine connects to
 *   10.0.2.2:PORT); each connection is carried to HOST:PORT on this machine.
 *
 * Each connection rides its own stream WebSocket, half-closes pass through
 * both ways (a FIN on one side becomes a FIN on the other), and a failure on
 * either side resets the other: a dropped WebSocket ends its connection with
 * a RST on the local side, never with a clean FIN, and the forward goes on
 * serving new connections. The remote listener's accept long-poll retries
 * with backoff while the server cannot be reached.
 *
 * @module
 */

import net from "node:net";
import { NetisleError, type NetisleSession, type NetisleSocket } from "../src/client/mod.ts";
import type { NetisleListener } from "../src/client/mod.ts";
import { CliError, describeCode, formatBytes } from "./cli_common.ts";
import { forwardLabel, type ForwardSpec } from "./forward_spec.ts";
import type { ForwardLog, ForwardStats } from "./forward_stats.ts";

/** A forward that runs until closed. */
export interface RunningForward {
  /** `-L 127.0.0.1:8080 -> 10.0.2.15:80`, with the port actually bound. */
  readonly label: string;
  /** Stops accepting; open connections are reset. */
  close(): Promise<void>;
}

/** What every forward gets. */
export interface ForwardContext {
  session: NetisleSession;
  stats: ForwardStats;
  log: ForwardLog;
}

function reason(err: unknown): string {
  if (err instanceof NetisleError) return `${describeCode(err.code)} (${err.code})`;
  const code = (err as { code?: string })?.code;
  return code ? `${describeCode(code)} (${code})` : String((err as Error)?.message ?? err);
}

/**
 * Carries bytes between a local TCP socket and a connection in the session,
 * both ways, until both ended; resolves with the outcome for the log.
 */
async function pipe(
  local: net.Socket,
  remote: NetisleSocket,
  stats: ForwardStats,
): Promise<{ into: number; out: number; error?: unknown }> {
  let into = 0;
  let out = 0;
  let error: unknown;
  const fail = (err: unknown) => {
    if (error !== undefined) return;
    error = err;
    local.resetAndDestroy();
    void remote.reset();
  };
  local.on("error", fail);
  // Events, not the async iterator: at the end of input that one destroys the socket,
  // which would cut the other direction of a half-closed connection.
  const writer = remote.writable.getWriter();
  const up = new Promise<void>((resolve) => {
    local.on("data", (chunk: Uint8Array) => {
      into += chunk.length;
      stats.bytesIn += chunk.length;
      local.pause();
      writer.write(chunk).then(() => local.resume(), (err) => {
        fail(err);
        resolve();
      });
    });
    local.once("end", () => {
      // The local FIN, after the writes before it.
      writer.close().then(resolve, (err) => {
        fail(err);
        resolve();
      });
    });
    local.once("close", () => {
      if (!local.readableEnded) fail(new NetisleError("ECONNRESET", "the local side went away"));
      resolve();
    });
    local.resume(); // accepted paused (pauseOnConnect) until the far side was open
  });
  const down = (async () => {
    try {
      for await (const chunk of remote.readable) {
        out += chunk.length;
        stats.bytesOut += chunk.length;
        if (!local.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              local.off("drain", done);
              local.off("close", done);
              resolve();
            };
            local.on("drain", done);
            local.on("close", done);
          });
        }
      }
      local.end(); // the peer's FIN
    } catch (err) {
      fail(err);
    }
  })();
  await Promise.all([up, down]);
  await remote.closed.catch((err) => fail(err));
  if (error === undefined) {
    await new Promise<void>((r) =>
      local.destroyed ? r() : (local.once("close", () => r()), local.end())
    );
  }
  return { into, out, error };
}

function done(
  ctx: ForwardContext,
  label: string,
  from: string,
  started: number,
  r: { into: number; out: number; error?: unknown },
): void {
  ctx.stats.open--;
  if (r.error !== undefined) ctx.stats.failed++;
  else ctx.stats.done++;
  const took = ((performance.now() - started) / 1000).toFixed(2);
  ctx.log.line(
    `${label}: ${from}: ${r.error === undefined ? "closed" : reason(r.error)} after ${took} s, ` +
      `${formatBytes(r.into)} into the session, ${formatBytes(r.out)} out`,
  );
}

/**
 * Starts a local TCP forward (`-L`); rejects with a CliError when the port cannot be bound.
 *
 * @example
 * ```ts
 * const f = await startLocalTcp({ session, stats, log }, parseForwardSpec("local", "8080:10.0.2.15:80"));
 * ```
 */
export async function startLocalTcp(
  ctx: ForwardContext,
  spec: ForwardSpec,
): Promise<RunningForward> {
  const open = new Set<net.Socket>();
  let label = forwardLabel(spec);
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (local) => {
    open.add(local);
    const started = performance.now();
    const from = `${local.remoteAddress}:${local.remotePort}`;
    ctx.stats.open++;
    const remote = ctx.session.connect({ hostname: spec.host, port: spec.port }, {
      allowHalfOpen: true,
    });
    remote.opened.then(
      async () => {
        done(ctx, label, from, started, await pipe(local, remote, ctx.stats));
        open.delete(local);
      },
      (err) => {
        // Refused, unreachable: the local client sees a reset, as from a closed port.
        local.resetAndDestroy();
        open.delete(local);
        done(ctx, label, from, started, { into: 0, out: 0, error: err });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new CliError(`${label}: cannot listen: ${reason(err)}`)));
    server.listen(spec.bindPort, spec.bindAddress ?? "127.0.0.1", () => resolve());
  });
  label = forwardLabel(spec, (server.address() as net.AddressInfo).port);
  return {
    label,
    close: async () => {
      for (const s of open) s.resetAndDestroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * Starts a remote TCP forward (`-R`): listens on the stack, rejects with a
 * CliError when the port is taken, then serves until closed.
 *
 * @example
 * ```ts
 * const f = await startRemoteTcp({ session, stats, log }, parseForwardSpec("remote", "8000:127.0.0.1:8000"));
 * ```
 */
export async function startRemoteTcp(
  ctx: ForwardContext,
  spec: ForwardSpec,
): Promise<RunningForward> {
  const listen = () => ctx.session.listen({ port: spec.bindPort, allowHalfOpen: true });
  let listener: NetisleListener;
  try {
    listener = await listen();
  } catch (err) {
    throw new CliError(`${forwardLabel(spec)}: cannot listen on the stack: ${reason(err)}`);
  }
  const label = forwardLabel({ ...spec, bindAddress: listener.local.address });
  let closed = false;
  const open = new Set<NetisleSocket>();
  const serve = (remote: NetisleSocket) => {
    const started = performance.now();
    ctx.stats.open++;
    open.add(remote);
    (async () => {
      let from = "?";
      try {
        const info = await remote.opened;
        from = info.remoteAddress ?? "?";
      } catch (err) {
        done(ctx, label, from, started, { into: 0, out: 0, error: err });
        return;
      }
      const local = net.connect({ host: spec.host, port: spec.port, allowHalfOpen: true });
      try {
        await new Promise<void>((resolve, reject) => {
          local.once("connect", resolve);
          local.once("error", reject);
        });
      } catch (err) {
        // Nothing listens here: the tunnelled machine sees a reset, as from a closed port.
        await remote.reset();
        done(ctx, label, from, started, { into: 0, out: 0, error: err });
        return;
      }
      // Bytes from the tunnelled machine go "out" of the session here, and back "into" it.
      const r = await pipe(local, remote, ctx.stats);
      done(ctx, label, from, started, r);
    })().finally(() => open.delete(remote));
  };
  (async () => {
    let delay = 250;
    while (!closed) {
      let remote: NetisleSocket;
      try {
        remote = await listener.accept();
        delay = 250;
      } catch (err) {
        if (closed) return;
        const gone = err instanceof NetisleError &&
          (err.code === "ENOTFOUND" || err.code === "ENOTCONN");
        ctx.log.line(
          `${label}: accept failed: ${reason(err)}; ${gone ? "listening again" : "retrying"} in ${
            (delay / 1000).toFixed(2)
          } s`,
        );
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(10_000, delay * 2);
        if (gone && !closed) {
          try {
            listener = await listen();
            ctx.log.line(`${label}: listening again`);
          } catch (e) {
            if (e instanceof NetisleError && e.code === "ENOTFOUND") {
              ctx.log.line(`${label}: the session is gone (${e.message}); stopping`);
              return;
            }
          }
        }
        continue;
      }
      serve(remote);
    }
  })();
  return {
    label,
    close: async () => {
      closed = true;
      for (const s of open) void s.reset();
      await listener.close().catch(() => {});
    },
  };
}
