/**
 * TCP egress of one session, terminated as gvisor-tap-vsock and libslirp do
 * it: the guest's SYN to an outside address is held by the core while the
 * gateway dials the destination through the runtime; the guest gets a
 * SYN-ACK only once the outbound connection opened, a RST when it was
 * refused or the policy or a limit denies it, and an ICMP destination
 * unreachable when there is no route or the dial timed out (host
 * unreachable) or the platform forbids it (administratively prohibited).
 * The same holds over IPv6 (the core sends the ICMPv6 counterparts), under
 * the same policy and the same per-session limits.
 *
 * Then bytes flow both ways through two pumps with no side buffers: the
 * guest's bytes are read out of the core connection one chunk at a time and
 * written to the runtime socket, the next read waiting for the write (so a
 * slow server keeps the guest's data in the connection's receive queue and
 * closes its window); the server's bytes are read only as far as the
 * connection's send buffer has room (so a slow guest stops the reads, and
 * the runtime's own buffers and window push back on the server). A FIN
 * either way is passed on as a half-close, a reset either way as a reset,
 * and a connection idle both ways for `tcpIdleTimeoutMs` (2 h) is reset.
 * What a pump holds in flight is charged to the session's memory quota.
 *
 * @module
 */

import { formatIpAddress, Icmpv4DestUnreachableCode, type IpAddress } from "../../wire/mod.ts";
import { bufferCost } from "../../stack/session_quota.ts";
import type { EgressTcpEvent } from "../../stack/stack_egress.ts";
import { TokenBucket } from "../../stack/token_bucket.ts";
import { TcpSocket } from "../../socket/tcp_socket.ts";
import type { TimerClock } from "../../socket/poll_deadline.ts";
import {
  classifyDialError,
  type DialedTcp,
  DialError,
  type DialFailure,
  type EgressDialer,
} from "./dialer.ts";
import type { EgressPolicy } from "./egress_policy.ts";
import type { EgressCounters, EgressDenial, EgressLimits } from "./egress_limits.ts";
import { formatEndpoint, ipFromWire } from "./ip_address.ts";
import type { EgressCore } from "./egress_core.ts";

/** Largest chunk a pump moves at once (the core's receive chunk). */
const CHUNK = 256 * 1024;
/** The smallest read from the runtime (also when the memory quota is tight). */
const MIN_READ = 2 * 1024;
/** The first read from the runtime; later ones follow what arrives. */
const FIRST_READ = 16 * 1024;

/** A TCP flow as the session view lists it. */
export interface TcpFlowView {
  protocol: "tcp";
  /** The guest's address and port. */
  guest: string;
  /** The destination. */
  destination: string;
  /**
   * `connecting` (the dial is in progress), `open`, `half-closed` (one
   * direction finished).
   */
  state: string;
  bytesOut: number;
  bytesIn: number;
  ageMs: number;
  idleMs: number;
}

class TcpFlow {
  state: "connecting" | "open" | "closed" = "connecting";
  readonly dial = new AbortController();
  dialTimer: number | undefined;
  dialed: DialedTcp | undefined;
  sock: TcpSocket | undefined;
  upDone = false;
  downDone = false;
  pumps = 0;
  bytesOut = 0;
  bytesIn = 0;
  constructor(
    readonly key: string,
    readonly guest: IpAddress,
    readonly guestPort: number,
    readonly dst: IpAddress,
    readonly dstPort: number,
    readonly createdAt: number,
    public lastActive: number,
  ) {}
}

/** What a flow table needs. */
export interface TcpFlowTableDeps {
  core: EgressCore;
  clock: TimerClock;
  dialer: EgressDialer;
  policy: EgressPolicy;
  limits: EgressLimits;
  counters: EgressCounters;
  /** Counts a refused flow. */
  deny(reason: EgressDenial): void;
}

/**
 * The TCP flows of one session.
 *
 * @example
 * ```ts
 * const tcp = new TcpFlowTable({ core, clock, dialer, policy, limits, counters, deny });
 * tcp.handle(event); // an EgressTcpEvent taken from the core
 * ```
 */
export class TcpFlowTable {
  #d: TcpFlowTableDeps;
  #flows = new Map<string, TcpFlow>();
  #connecting = 0;
  #rate: TokenBucket;
  #timer: number | undefined;
  #timerAt = Infinity;
  #closed = false;

  /** Creates an empty table. */
  constructor(deps: TcpFlowTableDeps) {
    this.#d = deps;
    this.#rate = new TokenBucket(
      deps.limits.newConnectionsPerSecond,
      deps.limits.newConnectionsBurst,
    );
  }

  /** Flows now (dials in progress included). */
  get size(): number {
    return this.#flows.size;
  }

  /** Dials in progress. */
  get connecting(): number {
    return this.#connecting;
  }

  /** Answers one TCP event from the core. */
  handle(e: EgressTcpEvent): void {
    if (this.#closed) return;
    if (e.kind === "tcp_cancel") {
      const f = this.#flows.get(e.key);
      if (f?.state === "connecting") f.dial.abort(new Error("the guest gave up"));
      return;
    }
    const d = this.#d;
    const refuse = (reason: EgressDenial) => {
      d.deny(reason);
      d.core.enter((egress, now) => egress.refuseTcp(e.key, now));
    };
    const reason = d.policy.check("tcp", ipFromWire(e.dst), e.dstPort);
    if (reason) return refuse(reason);
    const old = this.#flows.get(e.key);
    if (old) {
      if (old.state === "connecting" && old.dial.signal.aborted) {
        // A new SYN after the guest gave the last one up: the old dial is being torn down.
        old.state = "closed";
        this.#flows.delete(e.key);
      } else {
        // The 4-tuple's previous connection is still winding down: refuse this one.
        d.core.enter((egress, now) => egress.refuseTcp(e.key, now));
        return;
      }
    }
    if (this.#flows.size >= d.limits.maxTcpConnections) return refuse("limit_tcp_connections");
    if (this.#connecting >= d.limits.maxPendingConnects) return refuse("limit_pending_connects");
    const now = d.clock.now();
    if (!this.#rate.take(now)) return refuse("limit_new_connections");
    const flow = new TcpFlow(e.key, e.src, e.srcPort, e.dst, e.dstPort, now, now);
    this.#flows.set(e.key, flow);
    this.#connecting++;
    void this.#connect(flow);
  }

  async #connect(flow: TcpFlow): Promise<void> {
    const d = this.#d;
    const clock = d.clock;
    flow.dialTimer = clock.setTimer(clock.now() + d.limits.connectTimeoutMs, () => {
      flow.dialTimer = undefined;
      flow.dial.abort(new DialError("timeout", "connect timed out"));
    });
    let dialed: DialedTcp | undefined;
    let failure: DialFailure | "cancelled" | undefined;
    try {
      dialed = await d.dialer.connectTcp(formatIpAddress(flow.dst), flow.dstPort, {
        signal: flow.dial.signal,
      });
    } catch (err) {
      if (flow.dial.signal.aborted) {
        // Our own timeout says "timeout"; the guest giving up or the session ending, "cancelled".
        const r = flow.dial.signal.reason;
        failure = r instanceof DialError ? r.kind : "cancelled";
      } else {
        failure = classifyDialError(err);
      }
    } finally {
      if (flow.dialTimer !== undefined) clock.clearTimer(flow.dialTimer);
      flow.dialTimer = undefined;
      this.#connecting--;
    }
    if (this.#closed || flow.state === "closed") {
      dialed?.close(true);
      return this.#remove(flow);
    }
    if (failure !== undefined || dialed === undefined) {
      return this.#failed(flow, failure ?? "unreachable");
    }
    const conn = d.core.enter((egress, now) => egress.acceptTcp(flow.key, now));
    if (!conn) {
      // The guest gave up meanwhile (or the session's TCP is full: it got a RST).
      dialed.close(true);
      return this.#remove(flow);
    }
    d.counters.tcp.opened++;
    flow.dialed = dialed;
    flow.sock = new TcpSocket(d.core.host, conn);
    flow.state = "open";
    flow.lastActive = clock.now();
    flow.pumps = 2;
    void this.#pumpUp(flow);
    void this.#pumpDown(flow);
    this.#arm();
  }

  #failed(flow: TcpFlow, failure: DialFailure | "cancelled"): void {
    const d = this.#d;
    const c = d.counters.tcp;
    switch (failure) {
      case "refused":
        c.refused++;
        d.core.enter((egress, now) => egress.refuseTcp(flow.key, now));
        break;
      case "prohibited":
        c.prohibited++;
        d.core.enter((egress, now) =>
          egress.tcpUnreachable(flow.key, Icmpv4DestUnreachableCode.COMM_PROHIBITED, now)
        );
        break;
      case "timeout":
      case "unreachable":
        if (failure === "timeout") c.timedOut++;
        else c.unreachable++;
        d.core.enter((egress, now) =>
          egress.tcpUnreachable(flow.key, Icmpv4DestUnreachableCode.HOST, now)
        );
        break;
      case "cancelled":
        break;
    }
    this.#remove(flow);
  }

  /** Guest → server: a chunk out of the core connection, written before the next is read. */
  async #pumpUp(flow: TcpFlow): Promise<void> {
    const { core, counters } = this.#d;
    const sock = flow.sock!;
    const dialed = flow.dialed!;
    const memory = core.host.stack.quota.memory;
    try {
      for (;;) {
        const chunk = sock.read(CHUNK);
        if (chunk === undefined) {
          await sock.waitReadable();
          continue;
        }
        if (chunk === null) {
          await dialed.closeWrite();
          flow.upDone = true;
          return;
        }
        // The chunk left the core's receive queue (and its charge): charged again in flight.
        const charge = bufferCost(chunk.byteLength);
        memory.forceCharge(charge);
        try {
          await dialed.write(chunk);
        } finally {
          memory.release(charge);
        }
        flow.bytesOut += chunk.length;
        counters.tcp.bytesOut += chunk.length;
        flow.lastActive = this.#d.clock.now();
      }
    } catch {
      // The guest reset the connection, or the server's side failed: reset the other side.
      this.#reset(flow);
    } finally {
      this.#pumpEnded(flow);
    }
  }

  /** Server → guest: reads no more than the connection's send buffer takes. */
  async #pumpDown(flow: TcpFlow): Promise<void> {
    const { core, counters } = this.#d;
    const sock = flow.sock!;
    const conn = sock.conn;
    const dialed = flow.dialed!;
    const memory = core.host.stack.quota.memory;
    let size = FIRST_READ;
    try {
      for (;;) {
        if (!conn.canWrite) {
          if (conn.state === "CLOSED") throw new Error("the guest's side closed");
          flow.downDone = true; // the guest's side will not take more (closed for writing)
          return;
        }
        const space = conn.writableBytes;
        if (space === 0) {
          await sock.waitWritable();
          continue;
        }
        let max = Math.min(space, size, CHUNK);
        let charge = bufferCost(max);
        if (!memory.tryCharge(charge)) {
          max = Math.min(space, MIN_READ);
          charge = bufferCost(max);
          memory.forceCharge(charge);
        }
        let data: Uint8Array | null;
        try {
          data = await dialed.read(max);
          if (data !== null) {
            let off = 0;
            while (off < data.length) {
              off += sock.trySend(off === 0 ? data : data.subarray(off));
              if (off < data.length) await sock.waitWritable();
            }
          }
        } finally {
          memory.release(charge);
        }
        if (data === null) {
          sock.shutdown("write");
          flow.downDone = true;
          return;
        }
        flow.bytesIn += data.length;
        counters.tcp.bytesIn += data.length;
        flow.lastActive = this.#d.clock.now();
        // Follow what arrives: grow while reads fill the buffer, shrink when they do not.
        if (data.length === max && max === size) size = Math.min(CHUNK, size * 2);
        else if (data.length < size / 4) size = Math.max(MIN_READ, size / 2);
      }
    } catch {
      this.#reset(flow);
    } finally {
      this.#pumpEnded(flow);
    }
  }

  /** Resets both sides (once). */
  #reset(flow: TcpFlow): void {
    if (flow.state === "closed") return;
    flow.state = "closed";
    try {
      flow.sock?.abort();
    } catch {
      // The session is closing.
    }
    flow.dialed?.close(true);
  }

  #pumpEnded(flow: TcpFlow): void {
    if (--flow.pumps > 0) return;
    if (flow.state !== "closed") {
      // Both directions finished cleanly: the core connection finishes its FIN exchange.
      flow.state = "closed";
      flow.dialed?.close();
      try {
        flow.sock?.close();
      } catch {
        // The session is closing.
      }
    }
    this.#remove(flow);
  }

  #remove(flow: TcpFlow): void {
    flow.state = "closed";
    if (this.#flows.get(flow.key) === flow) this.#flows.delete(flow.key);
  }

  /** Resets every flow and stops every timer; dials in progress are aborted. */
  close(): void {
    this.#closed = true;
    for (const f of [...this.#flows.values()]) {
      if (f.dialTimer !== undefined) this.#d.clock.clearTimer(f.dialTimer);
      f.dialTimer = undefined;
      f.dial.abort(new Error("the session ended"));
      this.#reset(f);
      this.#remove(f);
    }
    if (this.#timer !== undefined) this.#d.clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /** The flows, for the session view. */
  view(now: number): TcpFlowView[] {
    return [...this.#flows.values()].map((f) => ({
      protocol: "tcp",
      guest: formatEndpoint(f.guest, f.guestPort),
      destination: formatEndpoint(f.dst, f.dstPort),
      state: f.state === "connecting"
        ? "connecting"
        : f.upDone || f.downDone
        ? "half-closed"
        : f.state,
      bytesOut: f.bytesOut,
      bytesIn: f.bytesIn,
      ageMs: Math.round(now - f.createdAt),
      idleMs: Math.round(now - f.lastActive),
    }));
  }

  /** Arms the idle timer for the earliest idle deadline of the open flows (one timer). */
  #arm(): void {
    if (this.#closed) return;
    const idle = this.#d.limits.tcpIdleTimeoutMs;
    let next = Infinity;
    for (const f of this.#flows.values()) {
      if (f.state === "open") next = Math.min(next, f.lastActive + idle);
    }
    if (next === Infinity) return;
    if (this.#timer !== undefined && this.#timerAt <= next) return;
    const clock = this.#d.clock;
    if (this.#timer !== undefined) clock.clearTimer(this.#timer);
    this.#timerAt = next;
    this.#timer = clock.setTimer(next, () => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      const now = clock.now();
      for (const f of [...this.#flows.values()]) {
        if (f.state === "open" && now - f.lastActive >= idle) {
          this.#d.counters.tcp.idleResets++;
          this.#reset(f);
        }
      }
      this.#arm();
    });
  }
}
