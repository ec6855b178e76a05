/**
 * UDP egress of one session: per-flow mappings, one runtime UDP socket per
 * guest address and port (so the outside sees one source port per guest
 * endpoint, RFC 4787 REQ-1, endpoint-independent mapping), with
 * address-and-port-dependent filtering: a datagram from outside reaches the
 * guest only from an address and port the flow sent to (the last 16). A flow
 * expires after it idled 60 s (30 s when its last destination was port 53).
 *
 * Each new destination is checked against the policy; a denied datagram,
 * one over the flow limit, or any on a runtime without outbound UDP, gets an
 * ICMP administratively prohibited (RFC 1812 §5.2.7.1). When the runtime
 * reports a port unreachable (`ECONNREFUSED`), the guest gets an ICMP port
 * unreachable for the flow's last destination.
 *
 * @module
 */

import { formatIpAddress, Icmpv4DestUnreachableCode, type IpAddress } from "../../wire/mod.ts";
import type { EgressUdpEvent } from "../../stack/stack_egress.ts";
import type { TimerClock } from "../../socket/poll_deadline.ts";
import type { DialedUdp, EgressDialer } from "./dialer.ts";
import type { EgressPolicy } from "./egress_policy.ts";
import type { EgressCounters, EgressDenial, EgressLimits } from "./egress_limits.ts";
import { formatEndpoint, ipFromWire, ipToWire, parseIpAddress } from "./ip_address.ts";
import type { EgressCore } from "./egress_core.ts";

/** Peers (address and port) a flow remembers for filtering. */
const MAX_PEERS = 16;

/** A flow as the session view lists it. */
export interface UdpFlowView {
  protocol: "udp";
  /** The guest's address and port. */
  guest: string;
  /** The last destination. */
  destination: string;
  /** `opening` while the runtime socket opens, then `open`. */
  state: string;
  bytesOut: number;
  bytesIn: number;
  datagramsOut: number;
  datagramsIn: number;
  ageMs: number;
  idleMs: number;
}

interface Pending {
  dst: IpAddress;
  dstPort: number;
  payload: Uint8Array;
  charge: number;
}

class UdpFlow {
  state: "opening" | "open" | "closed" = "opening";
  socket: DialedUdp | undefined;
  queue: Pending[] = [];
  peers = new Map<string, true>();
  lastDst: IpAddress;
  lastDstPort = 0;
  bytesOut = 0;
  bytesIn = 0;
  datagramsOut = 0;
  datagramsIn = 0;
  constructor(
    readonly key: string,
    readonly guest: IpAddress,
    readonly guestPort: number,
    readonly createdAt: number,
    public lastActive: number,
  ) {
    this.lastDst = guest;
  }

  /** The flow's family: its runtime socket is bound for it. */
  get family(): 4 | 6 {
    return typeof this.guest === "string" ? 6 : 4;
  }
}

/** What a flow table needs. */
export interface UdpFlowTableDeps {
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
 * The UDP flows of one session.
 *
 * @example
 * ```ts
 * const udp = new UdpFlowTable({ core, clock, dialer, policy, limits, counters, deny });
 * udp.handle(event); // an EgressUdpEvent taken from the core
 * ```
 */
export class UdpFlowTable {
  #d: UdpFlowTableDeps;
  #flows = new Map<string, UdpFlow>();
  #timer: number | undefined;
  #timerAt = Infinity;
  #closed = false;

  /** Creates an empty table. */
  constructor(deps: UdpFlowTableDeps) {
    this.#d = deps;
  }

  /** Flows open (or opening) now. */
  get size(): number {
    return this.#flows.size;
  }

  /** Relays one datagram from the guest (and releases its charge when done with it). */
  handle(e: EgressUdpEvent): void {
    const d = this.#d;
    if (this.#closed) return d.core.release(e.charge);
    // An IPv6 key starts with "[": no IPv4 flow's key does.
    const key = typeof e.src === "string" ? `[${e.src}]${e.srcPort}` : `${e.src}:${e.srcPort}`;
    let flow = this.#flows.get(key);
    const refuse = (reason: EgressDenial) => {
      d.deny(reason);
      d.core.release(e.charge);
      d.core.enter((egress, now) =>
        egress.udpUnreachable(
          e.src,
          e.srcPort,
          e.dst,
          e.dstPort,
          Icmpv4DestUnreachableCode.COMM_PROHIBITED,
          now,
        )
      );
    };
    if (!d.dialer.openUdp) return refuse("udp_unsupported");
    const reason = d.policy.check("udp", ipFromWire(e.dst), e.dstPort);
    if (reason) return refuse(reason);
    const now = d.clock.now();
    if (!flow) {
      if (this.#flows.size >= d.limits.maxUdpFlows) return refuse("limit_udp_flows");
      flow = new UdpFlow(key, e.src, e.srcPort, now, now);
      this.#flows.set(key, flow);
      d.counters.udp.flows++;
      this.#open(flow);
    }
    flow.lastActive = now;
    flow.lastDst = e.dst;
    flow.lastDstPort = e.dstPort;
    const peer = `${e.dst}:${e.dstPort}`;
    flow.peers.delete(peer);
    flow.peers.set(peer, true);
    if (flow.peers.size > MAX_PEERS) flow.peers.delete(flow.peers.keys().next().value!);
    const p = { dst: e.dst, dstPort: e.dstPort, payload: e.payload, charge: e.charge };
    if (flow.state === "opening") {
      if (flow.queue.length >= d.limits.udpQueuedWhileOpening) {
        d.counters.udp.dropped++;
        d.core.release(e.charge);
        return;
      }
      flow.queue.push(p);
    } else {
      this.#send(flow, p);
    }
    this.#arm();
  }

  /** Closes every flow and its socket, and the expiry timer. */
  close(): void {
    this.#closed = true;
    for (const f of [...this.#flows.values()]) this.#end(f);
    if (this.#timer !== undefined) this.#d.clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /** The flows, for the session view. */
  view(now: number): UdpFlowView[] {
    return [...this.#flows.values()].map((f) => ({
      protocol: "udp",
      guest: formatEndpoint(f.guest, f.guestPort),
      destination: formatEndpoint(f.lastDst, f.lastDstPort),
      state: f.state,
      bytesOut: f.bytesOut,
      bytesIn: f.bytesIn,
      datagramsOut: f.datagramsOut,
      datagramsIn: f.datagramsIn,
      ageMs: Math.round(now - f.createdAt),
      idleMs: Math.round(now - f.lastActive),
    }));
  }

  #open(flow: UdpFlow): void {
    const d = this.#d;
    d.dialer.openUdp!({
      message: (data, address, port) => this.#received(flow, data, address, port),
      error: (code) => {
        if (code !== "ECONNREFUSED" || flow.state === "closed") return;
        d.counters.udp.portUnreachable++;
        d.core.enter((egress, now) =>
          egress.udpUnreachable(
            flow.guest,
            flow.guestPort,
            flow.lastDst,
            flow.lastDstPort,
            Icmpv4DestUnreachableCode.PORT,
            now,
          )
        );
      },
    }, flow.family).then((socket) => {
      if (flow.state === "closed") {
        socket.close();
        return;
      }
      flow.socket = socket;
      flow.state = "open";
      const q = flow.queue;
      flow.queue = [];
      for (const p of q) this.#send(flow, p);
    }, () => {
      // The runtime could not open a socket: the flow ends, its datagrams are lost.
      d.counters.udp.dropped += flow.queue.length;
      this.#end(flow);
    });
  }

  #send(flow: UdpFlow, p: Pending): void {
    const d = this.#d;
    flow.datagramsOut++;
    flow.bytesOut += p.payload.length;
    d.counters.udp.datagramsOut++;
    d.counters.udp.bytesOut += p.payload.length;
    flow.socket!.send(p.payload, formatIpAddress(p.dst), p.dstPort).catch(() => {
      d.counters.udp.dropped++;
    }).finally(() => d.core.release(p.charge));
  }

  #received(flow: UdpFlow, data: Uint8Array, address: string, port: number): void {
    const d = this.#d;
    if (flow.state !== "open") return;
    const ip = parseIpAddress(address.replace(/%.*$/, ""));
    const src = ip === undefined ? undefined : ipToWire(ip);
    if (
      src === undefined || typeof src !== typeof flow.guest || !flow.peers.has(`${src}:${port}`) ||
      data.length > d.core.maxUdpPayloadFor(src)
    ) {
      d.counters.udp.dropped++;
      return;
    }
    flow.lastActive = d.clock.now();
    flow.datagramsIn++;
    flow.bytesIn += data.length;
    d.counters.udp.datagramsIn++;
    d.counters.udp.bytesIn += data.length;
    d.core.enter((egress, now) => egress.sendUdp(src, port, flow.guest, flow.guestPort, data, now));
  }

  #end(flow: UdpFlow): void {
    if (this.#flows.get(flow.key) === flow) this.#flows.delete(flow.key);
    flow.state = "closed";
    flow.socket?.close();
    flow.socket = undefined;
    for (const p of flow.queue) this.#d.core.release(p.charge);
    flow.queue = [];
  }

  #idleLimit(f: UdpFlow): number {
    const l = this.#d.limits;
    return f.lastDstPort === 53 ? l.dnsUdpIdleTimeoutMs : l.udpIdleTimeoutMs;
  }

  /** Arms the expiry timer for the earliest flow expiry (one timer for the table). */
  #arm(): void {
    if (this.#closed || this.#flows.size === 0) return;
    let next = Infinity;
    for (const f of this.#flows.values()) next = Math.min(next, f.lastActive + this.#idleLimit(f));
    if (this.#timer !== undefined && this.#timerAt <= next) return;
    const clock = this.#d.clock;
    if (this.#timer !== undefined) clock.clearTimer(this.#timer);
    this.#timerAt = next;
    this.#timer = clock.setTimer(next, () => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      const now = clock.now();
      for (const f of [...this.#flows.values()]) {
        if (now - f.lastActive >= this.#idleLimit(f)) this.#end(f);
      }
      this.#arm();
    });
  }
}
