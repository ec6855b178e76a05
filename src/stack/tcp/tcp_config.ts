/**
 * Options of TCP connections and their defaults.
 *
 * @module
 */

/** Per-connection TCP options. Every field has a default in {@linkcode DEFAULT_TCP_CONFIG}. */
export interface TcpConfig {
  /** Bytes the application may queue before writes wait (the send buffer), at first. */
  sendBufferBytes: number;
  /**
   * The most the send buffer grows to as the congestion window grows (twice
   * cwnd, as Linux's send-buffer autotuning), so that a fast path is not
   * held back by a buffer sized for a slow one; its storage is allocated
   * (and charged) only as bytes are queued. No less than `sendBufferBytes`;
   * equal to it turns the growth off, and a `sendBufferBytes` given without
   * it is taken as fixed (as `SO_SNDBUF` is on Linux).
   */
  sendBufferMaxBytes: number;
  /** Bytes of received data held for the application, in order and out of order (the receive window), at first. */
  recvBufferBytes: number;
  /**
   * The most the receive window grows to while the application reads as
   * fast as data arrives (twice what it read in a round trip, as Linux's
   * receive-buffer autotuning); the window scale offered covers it. No less
   * than `recvBufferBytes`; equal to it turns the growth off, and a
   * `recvBufferBytes` given without it is taken as fixed (as `SO_RCVBUF`).
   */
  recvBufferMaxBytes: number;
  /** Congestion control: CUBIC (RFC 9438) by default, or NewReno (RFC 5681, RFC 6582). */
  congestionControl: "cubic" | "newreno";
  /** Disables Nagle's algorithm (RFC 9293 §3.7.4) when true. */
  noDelay: boolean;
  /**
   * Paces new data at twice cwnd per smoothed RTT in slow start and 1.2
   * times in congestion avoidance (as Linux), in small batches per timer
   * tick, instead of sending each window in one burst (tcp_pacer.ts); ends
   * slow start on HyStart's ACK train while the window is small, and holds
   * the window's growth in congestion avoidance while the flow's own queue
   * adds HyStart++'s margin (4 ms or more) to the RTT (congestion.ts,
   * `delayBound`), so that a receiver with a small queue (v86's NE2000,
   * 16 KiB) is overrun neither by the first flights nor by CUBIC's probing
   * later. On by default: against a kernel peer with deep queues it costs
   * nothing measurable (`deno task bench -- e2e`, part `pacing`).
   */
  pacing: boolean;
  /** Longest delay of an ACK for in-order data (RFC 9293 §3.8.6.3 allows up to 500 ms; we use 40). */
  delayedAckMs: number;
  /** Offer and accept window scaling (RFC 7323 §2). */
  windowScaling: boolean;
  /** Offer and accept timestamps (RFC 7323 §3). */
  timestamps: boolean;
  /** Offer and accept SACK (RFC 2018). */
  sack: boolean;
  /** SYN retransmissions before a connect fails with ETIMEDOUT (Linux tcp_syn_retries). */
  synRetries: number;
  /** SYN-ACK retransmissions before a half-open connection is dropped (Linux tcp_synack_retries). */
  synAckRetries: number;
  /** Consecutive retransmission timeouts before the connection is aborted (RFC 9293 §3.8.3 R2). */
  maxRetransmits: number;
  /** Time in TIME_WAIT, 2*MSL (RFC 9293 §3.4.2; Linux uses 60 s). */
  timeWaitMs: number;
  /** How long an orphaned connection (closed by the application) waits in FIN_WAIT_2. */
  finWait2TimeoutMs: number;
  /** Keepalive (RFC 9293 §3.8.4): idle time before the first probe; 0 disables. */
  keepaliveIdleMs: number;
  /** Interval between keepalive probes. */
  keepaliveIntervalMs: number;
  /** Unanswered keepalive probes before the connection is aborted with ETIMEDOUT. */
  keepaliveProbes: number;
  /** RTO bounds (RFC 6298 §2; the minimum follows Linux's 200 ms). */
  initialRtoMs: number;
  minRtoMs: number;
  maxRtoMs: number;
}

/** Defaults, close to Linux's. */
export const DEFAULT_TCP_CONFIG: TcpConfig = {
  sendBufferBytes: 512 * 1024,
  sendBufferMaxBytes: 4 * 1024 * 1024,
  recvBufferBytes: 512 * 1024,
  recvBufferMaxBytes: 4 * 1024 * 1024,
  congestionControl: "cubic",
  noDelay: false,
  pacing: true,
  delayedAckMs: 40,
  windowScaling: true,
  timestamps: true,
  sack: true,
  synRetries: 6,
  synAckRetries: 5,
  maxRetransmits: 15,
  timeWaitMs: 60_000,
  finWait2TimeoutMs: 60_000,
  keepaliveIdleMs: 0,
  keepaliveIntervalMs: 75_000,
  keepaliveProbes: 9,
  initialRtoMs: 1000,
  minRtoMs: 200,
  maxRtoMs: 120_000,
};

/** Merges `partial` over the defaults and checks every value; throws RangeError naming the field. */
export function resolveTcpConfig(partial: Partial<TcpConfig> = {}): TcpConfig {
  const c = { ...DEFAULT_TCP_CONFIG, ...partial };
  // A send buffer set without a maximum is a fixed size (as SO_SNDBUF turns Linux's growth off).
  if (partial.sendBufferMaxBytes === undefined && partial.sendBufferBytes !== undefined) {
    c.sendBufferMaxBytes = c.sendBufferBytes;
  }
  if (partial.recvBufferMaxBytes === undefined && partial.recvBufferBytes !== undefined) {
    c.recvBufferMaxBytes = c.recvBufferBytes;
  }
  const positive = (name: keyof TcpConfig, min: number, max: number) => {
    const v = c[name] as number;
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new RangeError(`TcpConfig.${name} must be an integer in ${min}..${max}, got ${v}`);
    }
  };
  positive("sendBufferBytes", 1024, 1 << 30);
  positive("sendBufferMaxBytes", c.sendBufferBytes, 1 << 30);
  positive("recvBufferBytes", 1024, 1 << 30);
  positive("recvBufferMaxBytes", c.recvBufferBytes, 1 << 30);
  positive("delayedAckMs", 1, 500);
  positive("synRetries", 0, 20);
  positive("synAckRetries", 0, 20);
  positive("maxRetransmits", 1, 30);
  positive("timeWaitMs", 0, 600_000);
  positive("finWait2TimeoutMs", 0, 600_000);
  positive("keepaliveIdleMs", 0, 86_400_000);
  positive("keepaliveIntervalMs", 1, 86_400_000);
  positive("keepaliveProbes", 1, 100);
  positive("initialRtoMs", 1, 600_000);
  positive("minRtoMs", 1, 600_000);
  positive("maxRtoMs", 1, 600_000);
  if (c.congestionControl !== "cubic" && c.congestionControl !== "newreno") {
    throw new RangeError(
      `TcpConfig.congestionControl must be "cubic" or "newreno", got ${
        JSON.stringify(c.congestionControl)
      }`,
    );
  }
  return c;
}
