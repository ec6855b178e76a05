/**
 * Client-side WebSocket keepalive: ping every `intervalMs`, and declare the
 * peer dead when a pong does not come back within `timeoutMs`. A half-open
 * TCP connection (a NAT that forgot it, a peer that vanished without a FIN)
 * otherwise looks alive until the kernel gives up retransmitting, which takes
 * minutes. RFC 6455 §5.5.2/§5.5.3: a Ping must be answered with a Pong.
 *
 * Ping frames are not part of the standard `WebSocket` API; this works with
 * sockets that have `ping()` and emit `"pong"` (the `ws` package).
 *
 * @module
 */

/** The part of the `ws` package's socket a keepalive needs. */
export interface PingableSocket {
  ping(): void;
  on(event: "pong", listener: () => void): unknown;
  off(event: "pong", listener: () => void): unknown;
}

/** Keepalive timing. */
export interface KeepaliveOptions {
  /** Time between pings. */
  intervalMs: number;
  /** How long to wait for the pong of a ping before declaring the peer dead. */
  timeoutMs: number;
}

/** Whether `ws` can send pings (has `ping()` and emits `"pong"`). */
export function isPingable(ws: unknown): ws is PingableSocket {
  const w = ws as Partial<PingableSocket> | null;
  return typeof w?.ping === "function" && typeof w.on === "function" &&
    typeof w.off === "function";
}

/**
 * Pings `ws` every `intervalMs`; calls `onDead` once when a pong is more than
 * `timeoutMs` late. Returns a function that stops the keepalive (call it when
 * the socket closes).
 *
 * @example
 * ```ts ignore
 * const stop = startKeepalive(ws, { intervalMs: 15_000, timeoutMs: 10_000 }, () => ws.terminate());
 * ws.on("close", stop);
 * ```
 */
export function startKeepalive(
  ws: PingableSocket,
  options: KeepaliveOptions,
  onDead: (reason: string) => void,
): () => void {
  if (!(options.intervalMs > 0) || !(options.timeoutMs > 0)) {
    throw new RangeError(
      `startKeepalive: intervalMs and timeoutMs must be positive, got ${options.intervalMs} and ${options.timeoutMs}`,
    );
  }
  let deadline: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const onPong = () => {
    if (deadline !== undefined) clearTimeout(deadline);
    deadline = undefined;
  };
  const tick = () => {
    if (stopped || deadline !== undefined) return;
    try {
      ws.ping();
    } catch {
      return; // Closing: the close handler stops us.
    }
    deadline = setTimeout(() => {
      deadline = undefined;
      if (stopped) return;
      stop();
      onDead(`no pong within ${options.timeoutMs / 1000} s`);
    }, options.timeoutMs);
  };
  ws.on("pong", onPong);
  const interval = setInterval(tick, options.intervalMs);
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(interval);
    if (deadline !== undefined) clearTimeout(deadline);
    ws.off("pong", onPong);
  };
  return stop;
}
