/**
 * Test helpers for the egress gateway: a session with egress on a manual
 * clock whose tunnel records what the stack sends, the guest (10.0.2.15)
 * already known to its ARP cache, a fake dialer and a scripted DNS upstream.
 *
 * @module
 */

import { ManualClock, Session, type TunnelEndpoint } from "../../session/mod.ts";
import {
  type IpAddress,
  IpProtocol,
  type Ipv6Address,
  parseIpAddress,
  parseIpv4Address,
  parseMacAddress,
  TcpFlags,
  TcpPacket,
  TcpRepr,
} from "../../wire/mod.ts";
import {
  decodeIp,
  ipFrame,
  PEER_IP as GUEST,
  PEER_MAC,
  STACK_MAC,
} from "../../stack/_stack_test_util.ts";
import { decodeV6, ndpFrame, PEER6, STACK6, v6Frame } from "../../stack/_ipv6_test_util.ts";
import { arpRequest } from "../../session/_session_test_util.ts";
import { FakeDialer } from "./fake_dialer.ts";
import { EgressPolicy, parseEgressRules } from "./egress_policy.ts";
import { EgressService, type EgressServiceOptions } from "./egress_service.ts";
import type { DnsAnswerSet, DnsResolveOptions, DnsUpstream } from "./dns/dns_upstream.ts";
import type { DnsQuestion } from "../../wire/mod.ts";

export {
  decodeIcmp,
  decodeIp,
  decodeUdp,
  PEER_IP as GUEST_IP,
  STACK_IP,
  udpFrame,
} from "../../stack/_stack_test_util.ts";

/** An outside address the tests' policy allows (198.18.0.0/15 is opened). */
export const OUTSIDE = "198.18.0.10";
/** {@linkcode OUTSIDE} as a u32. */
export const OUTSIDE_IP: number = parseIpv4Address(OUTSIDE);

/** The guest's IPv6 address (SLAAC in fd00::/64): what IPv6 frames come from. */
export const GUEST6: Ipv6Address = PEER6;

/** An IPv6 frame from the guest (fd00::5054:ff:fe12:3456) to `dst`, to the session's MAC. */
export function guest6Frame(
  nextHeader: number,
  payload: Uint8Array,
  dst: Ipv6Address,
  hopLimit = 64,
): Uint8Array {
  return v6Frame(nextHeader, payload, { dst, dstMac: STACK_MAC, hopLimit });
}

/**
 * Teaches a bed's stack the guest's IPv6 address and MAC (a neighbour
 * solicitation for fd00::2, RFC 4861 §7.2.3), then forgets what it sent.
 */
export function learnGuest6(bed: EgressBed): void {
  bed.input(ndpFrame(
    { type: "neighbor_solicit", target: STACK6, options: { sourceLinkAddr: PEER_MAC } },
    { src: GUEST6, dst: STACK6, dstMac: STACK_MAC },
  ));
  bed.sent.length = 0;
}

/** Whether `frame` is IPv6. */
export function isIpv6Frame(frame: Uint8Array): boolean {
  return frame[12] === 0x86 && frame[13] === 0xdd;
}

/** A DNS upstream the test scripts: answers by name, or holds until released. */
export class ScriptedUpstream implements DnsUpstream {
  readonly description = "scripted";
  /** Questions asked, in order. */
  readonly asked: DnsQuestion[] = [];
  /** Answers by lower-case name; a function may throw or wait. */
  answers = new Map<string, DnsAnswerSet | ((o: DnsResolveOptions) => Promise<DnsAnswerSet>)>();

  resolve(q: DnsQuestion, o: DnsResolveOptions): Promise<DnsAnswerSet> {
    this.asked.push(q);
    const a = this.answers.get(q.name.toLowerCase());
    if (a === undefined) return Promise.reject(new Error(`no script for ${q.name}`));
    if (typeof a === "function") return a(o);
    return Promise.resolve(structuredClone(a));
  }
}

/** Lets pending promises and microtasks run (no timer of the test's clock fires). */
export async function settle(rounds = 8): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 0));
}

/** A session with egress, its gateway, the fake world and what the tunnel received. */
export interface EgressBed {
  clock: ManualClock;
  session: Session;
  service: EgressService;
  dialer: FakeDialer;
  upstream: ScriptedUpstream;
  /** Frames the stack sent to the tunnel, oldest first; tests shift them off. */
  sent: Uint8Array[];
  /** Gives frames to the stack as the tunnel would. */
  input(...frames: Uint8Array[]): void;
}

/**
 * Builds an {@linkcode EgressBed}: policy opens 198.18.0.0/15 (the tests'
 * "internet"); options override the service's parts.
 */
export function egressBed(
  options: Partial<EgressServiceOptions> & { dialer?: FakeDialer } = {},
): EgressBed {
  const clock = new ManualClock(1000);
  const dialer = options.dialer ?? new FakeDialer();
  const upstream = new ScriptedUpstream();
  const service = new EgressService({
    dialer,
    upstream,
    policy: new EgressPolicy({ allow: parseEgressRules("198.18.0.0/15") }),
    ...options,
  });
  const session = new Session({
    id: "s_egress",
    token: "t",
    clock,
    stack: {
      mac: parseMacAddress("02:00:00:00:00:02"),
      ipv4: { address: parseIpv4Address("10.0.2.2"), prefixLength: 24 },
      mtu: 1500,
      egress: { enabled: true },
      // The guest stays resolved however far a test advances the clock.
      arp: { reachableMs: 1e12 },
    },
  });
  const sent: Uint8Array[] = [];
  const tunnel: TunnelEndpoint = {
    description: "test",
    send: (frames) => sent.push(...frames.map((f) => f.slice())),
    close: () => {},
  };
  session.attachTunnel(tunnel);
  session.input([arpRequest()]);
  sent.length = 0;
  service.attach(session);
  return {
    clock,
    session,
    service,
    dialer,
    upstream: (options.upstream as ScriptedUpstream | undefined) ?? upstream,
    sent,
    input: (...frames) => session.input(frames),
  };
}

/**
 * A scripted guest TCP (the session's machine) talking to an outside
 * address through a bed, over IPv4 from 10.0.2.15 or (for an IPv6
 * destination) over IPv6 from {@linkcode GUEST6}: it sends its segments as frames into the session
 * and takes the session's segments for its 4-tuple out of `bed.sent`,
 * acknowledging data as it arrives (unless `hold` is set: a guest whose
 * application does not read, window 0).
 */
export class GuestTcp {
  readonly bed: EgressBed;
  readonly dst: IpAddress;
  readonly dstPort: number;
  readonly srcPort: number;
  /** Our next sequence number. */
  seq: number;
  /** The next byte we expect from the outside (0 until the SYN-ACK). */
  ack = 0;
  /** The stack's ISN, once its SYN-ACK came. */
  peerIss: number | undefined;
  /** Segments the session sent us, oldest first. */
  readonly log: TcpRepr[] = [];
  /** Bytes received in order. */
  received: Uint8Array[] = [];
  gotFin = false;
  gotRst = false;
  /** The window we advertise (bytes; no window scaling is offered). */
  window = 65535;
  /**
   * While set, the guest's application reads nothing: received bytes are
   * acknowledged but fill its 64 KiB buffer, so its window closes.
   */
  hold = false;
  /** Bytes received while `hold` was set (they fill the window). */
  #unread = 0;
  /** The session's last acknowledgment and window (what we may still send). */
  peerAck = 0;
  peerWindow = 0;

  constructor(bed: EgressBed, dst: string, dstPort: number, srcPort = 40000, isn = 1000) {
    this.bed = bed;
    this.dst = parseIpAddress(dst);
    this.dstPort = dstPort;
    this.srcPort = srcPort;
    this.seq = isn;
  }

  /** Bytes received so far. */
  get receivedBytes(): number {
    return this.received.reduce((n, c) => n + c.length, 0);
  }

  /** Everything received, as text. */
  text(): string {
    return new TextDecoder().decode(concatBytes(this.received));
  }

  #frame(
    flags: number,
    payload: Uint8Array = new Uint8Array(0),
    extra: Partial<TcpRepr> = {},
  ): Uint8Array {
    const repr: TcpRepr = {
      srcPort: this.srcPort,
      dstPort: this.dstPort,
      seqNumber: this.seq,
      ackNumber: this.ack,
      flags,
      windowLen: this.window,
      payload,
      ...extra,
    };
    const tcp = new Uint8Array(TcpRepr.bufferLen(repr));
    if (typeof this.dst === "string") {
      TcpRepr.emit(repr, tcp, GUEST6, this.dst);
      return guest6Frame(IpProtocol.TCP, tcp, this.dst);
    }
    TcpRepr.emit(repr, tcp, GUEST, this.dst);
    return ipFrame(IpProtocol.TCP, tcp, { dst: this.dst });
  }

  /** Sends the SYN (MSS 1460). */
  syn(): void {
    this.bed.input(this.#frame(TcpFlags.SYN, undefined, { ackNumber: 0, mss: 1460 }));
  }

  /** Bytes the session's window lets us send now. */
  get sendable(): number {
    return Math.max(0, (this.peerAck + this.peerWindow - this.seq) | 0);
  }

  /**
   * Sends `data` in segments of at most 1460 bytes, no further than the
   * session's window when `windowed` (returns the bytes sent).
   */
  send(data: Uint8Array, windowed = false): number {
    const n = windowed ? Math.min(data.length, this.sendable) : data.length;
    const frames: Uint8Array[] = [];
    for (let o = 0; o < n; o += 1460) {
      const part = data.subarray(o, Math.min(n, o + 1460));
      frames.push(this.#frame(TcpFlags.ACK | TcpFlags.PSH, part));
      this.seq = (this.seq + part.length) >>> 0;
    }
    if (frames.length > 0) this.bed.input(...frames);
    return n;
  }

  /** The guest's application reads again: its window opens (a window update goes out). */
  release(): void {
    this.hold = false;
    this.#unread = 0;
    this.window = 65535;
    this.ackNow();
  }

  /** Sends FIN. */
  fin(): void {
    this.bed.input(this.#frame(TcpFlags.FIN | TcpFlags.ACK));
    this.seq = (this.seq + 1) >>> 0;
  }

  /** Sends RST. */
  rst(): void {
    this.bed.input(this.#frame(TcpFlags.RST | TcpFlags.ACK));
  }

  /** Sends a bare ACK (a window update after `hold` ends). */
  ackNow(): void {
    this.bed.input(this.#frame(TcpFlags.ACK));
  }

  /**
   * Takes the session's segments for this connection out of `bed.sent`,
   * answers them (ACK for the SYN-ACK and for data unless `hold`), and
   * returns them.
   */
  pump(): TcpRepr[] {
    const mine: TcpRepr[] = [];
    const rest: Uint8Array[] = [];
    for (const f of this.bed.sent) {
      const v6 = isIpv6Frame(f);
      if (v6 !== (typeof this.dst === "string")) {
        rest.push(f);
        continue;
      }
      const d = v6 ? decodeV6(f) : decodeIp(f);
      const proto = "nextHeader" in d.ip ? d.ip.nextHeader : d.ip.protocol;
      if (proto !== IpProtocol.TCP || d.ip.src !== this.dst) {
        rest.push(f);
        continue;
      }
      const p = TcpPacket.parse(d.payload);
      const r = p.ok ? TcpRepr.parse(p.value, d.ip.src, d.ip.dst) : undefined;
      if (!r?.ok || r.value.dstPort !== this.srcPort || r.value.srcPort !== this.dstPort) {
        rest.push(f);
        continue;
      }
      mine.push({ ...r.value, payload: r.value.payload.slice() });
    }
    this.bed.sent.splice(0, this.bed.sent.length, ...rest);
    let answer = false;
    for (const s of mine) {
      this.log.push(s);
      if (s.flags & TcpFlags.RST) {
        this.gotRst = true;
        continue;
      }
      if (s.flags & TcpFlags.ACK) {
        this.peerAck = s.ackNumber;
        this.peerWindow = s.windowLen;
      }
      if ((s.flags & TcpFlags.SYN) && (s.flags & TcpFlags.ACK) && this.peerIss === undefined) {
        this.peerIss = s.seqNumber;
        this.ack = (s.seqNumber + 1) >>> 0;
        this.seq = s.ackNumber;
        answer = true;
        continue;
      }
      if (s.payload.length > 0) {
        // In order and within our window: taken (a window probe beyond it is not).
        const fits = !this.hold || this.#unread + s.payload.length <= 65535;
        if (s.seqNumber === this.ack && fits) {
          this.received.push(s.payload);
          this.ack = (this.ack + s.payload.length) >>> 0;
          if (this.hold) {
            this.#unread += s.payload.length;
            this.window = 65535 - this.#unread;
          }
        }
        answer = true;
      }
      if ((s.flags & TcpFlags.FIN) && ((s.seqNumber + s.payload.length) >>> 0) === this.ack) {
        this.gotFin = true;
        this.ack = (this.ack + 1) >>> 0;
        answer = true;
      }
    }
    if (answer) this.ackNow();
    return mine;
  }
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
