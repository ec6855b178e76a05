/**
 * DHCPv4 messages (RFC 2131 §2) and the options netisle's DHCP server reads
 * and writes (RFC 2132). Options that are not listed in {@linkcode DhcpRepr}
 * are skipped on parse; option overload (52) is not supported, so options in
 * `sname` and `file` are ignored.
 *
 * @module
 */

import { type Ipv4Address, type MacAddress, readIpv4, writeIpv4 } from "./address.ts";
import { readU16, readU32, writeU16, writeU32 } from "./_bytes.ts";
import { checkBuffer, checkMac, checkUint } from "./_validate.ts";
import { fail, ok, type ParseResult } from "./parse_result.ts";

/** Length of the fixed BOOTP part of a DHCP message (before the magic cookie). */
export const DHCP_FIXED_LEN = 236;
/** The magic cookie 99.130.83.99 that starts the options (RFC 2131 §3). */
export const DHCP_MAGIC_COOKIE = 0x63825363;
/** Smallest message carrying options: the fixed part and the cookie. */
export const DHCP_MIN_LEN = DHCP_FIXED_LEN + 4;
/** Replies are padded to the BOOTP minimum of 300 bytes (RFC 1542 §2.1). */
export const DHCP_MIN_EMIT_LEN = 300;
/** The server's UDP port. */
export const DHCP_SERVER_PORT = 67;
/** The client's UDP port. */
export const DHCP_CLIENT_PORT = 68;

/** BOOTP `op` values. */
export const DhcpOp = { REQUEST: 1, REPLY: 2 } as const;

/**
 * DHCP message types (option 53, RFC 2132 §9.6).
 *
 * @example
 * ```ts
 * if (repr.messageType === DhcpMessageType.DISCOVER) offer(repr);
 * ```
 */
export const DhcpMessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

/** Option codes (RFC 2132) this codec reads and writes. */
export const DhcpOption = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS_SERVER: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  INTERFACE_MTU: 26,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  CLIENT_ID: 61,
  END: 255,
} as const;

/** Reasons the DHCP parsers reject a message. */
export const DHCP_DROP_REASONS: readonly string[] = [
  "dhcp_truncated",
  "dhcp_bad_cookie",
  "dhcp_unsupported_hardware",
  "dhcp_bad_option",
];

/** The broadcast bit of the `flags` field (RFC 2131 §2, figure 2). */
const FLAG_BROADCAST = 0x8000;

/**
 * A checked view over a DHCP message. After {@link DhcpPacket.parse}
 * succeeds no accessor can fail.
 *
 * @example
 * ```ts
 * const pkt = DhcpPacket.parse(udp.payload);
 * if (pkt.ok) console.log(pkt.value.xid);
 * ```
 */
export class DhcpPacket {
  /** The whole message. */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /**
   * Checks the length and the magic cookie.
   *
   * Reasons: `dhcp_truncated` (under 240 bytes), `dhcp_bad_cookie`.
   */
  static parse(bytes: Uint8Array): ParseResult<DhcpPacket> {
    if (bytes.length < DHCP_MIN_LEN) return fail("dhcp_truncated");
    if (readU32(bytes, DHCP_FIXED_LEN) !== DHCP_MAGIC_COOKIE) return fail("dhcp_bad_cookie");
    return ok(new DhcpPacket(bytes));
  }

  /** `op`: 1 request, 2 reply. */
  get op(): number {
    return this.bytes[0];
  }

  /** Hardware type (1 = Ethernet). */
  get htype(): number {
    return this.bytes[1];
  }

  /** Hardware address length (6 for Ethernet). */
  get hlen(): number {
    return this.bytes[2];
  }

  /** Transaction id. */
  get xid(): number {
    return readU32(this.bytes, 4);
  }

  /** The options area (after the cookie; a view). */
  get options(): Uint8Array {
    return this.bytes.subarray(DHCP_MIN_LEN);
  }
}

/**
 * A DHCP message as a plain object. Absent options are `undefined`.
 *
 * @example
 * ```ts
 * const discover: DhcpRepr = {
 *   op: DhcpOp.REQUEST, xid: 1, secs: 0, broadcast: true, hops: 0,
 *   ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr: mac,
 *   messageType: DhcpMessageType.DISCOVER,
 * };
 * ```
 */
export interface DhcpRepr {
  /** 1 request (client to server), 2 reply. */
  op: number;
  /** Relay hops. */
  hops: number;
  /** Transaction id chosen by the client. */
  xid: number;
  /** Seconds since the client began. */
  secs: number;
  /** The broadcast flag: the client cannot receive unicast before it is configured. */
  broadcast: boolean;
  /** Client address, when the client has one and can answer ARP. */
  ciaddr: Ipv4Address;
  /** "Your" address: the one offered or assigned. */
  yiaddr: Ipv4Address;
  /** Next server (boot server). */
  siaddr: Ipv4Address;
  /** Relay agent address. */
  giaddr: Ipv4Address;
  /** Client hardware (Ethernet) address. */
  chaddr: MacAddress;
  /** Option 53. */
  messageType?: number;
  /** Option 1. */
  subnetMask?: Ipv4Address;
  /** Option 3. */
  routers?: Ipv4Address[];
  /** Option 6. */
  dnsServers?: Ipv4Address[];
  /** Option 12. */
  hostname?: string;
  /** Option 15. */
  domainName?: string;
  /** Option 26 (at least 68). */
  interfaceMtu?: number;
  /** Option 50. */
  requestedIp?: Ipv4Address;
  /** Option 51, seconds. */
  leaseTime?: number;
  /** Option 54. */
  serverId?: Ipv4Address;
  /** Option 55. */
  parameterRequestList?: number[];
  /** Option 58 (T1), seconds. */
  renewalTime?: number;
  /** Option 59 (T2), seconds. */
  rebindingTime?: number;
  /** Option 61: type byte and identifier. */
  clientId?: Uint8Array;
}

const latin1 = (b: Uint8Array): string => {
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  return s;
};

function readAddrs(v: Uint8Array): Ipv4Address[] | undefined {
  if (v.length === 0 || v.length % 4 !== 0) return undefined;
  const out: Ipv4Address[] = [];
  for (let i = 0; i < v.length; i += 4) out.push(readIpv4(v, i));
  return out;
}

/** Applies one option to `r`; false when its length is wrong for its code. */
function applyOption(r: DhcpRepr, code: number, v: Uint8Array): boolean {
  switch (code) {
    case DhcpOption.SUBNET_MASK:
    case DhcpOption.REQUESTED_IP:
    case DhcpOption.SERVER_ID: {
      if (v.length !== 4) return false;
      const a = readIpv4(v, 0);
      if (code === DhcpOption.SUBNET_MASK) r.subnetMask = a;
      else if (code === DhcpOption.REQUESTED_IP) r.requestedIp = a;
      else r.serverId = a;
      return true;
    }
    case DhcpOption.ROUTER:
    case DhcpOption.DNS_SERVER: {
      const a = readAddrs(v);
      if (!a) return false;
      if (code === DhcpOption.ROUTER) r.routers = a;
      else r.dnsServers = a;
      return true;
    }
    case DhcpOption.HOSTNAME:
    case DhcpOption.DOMAIN_NAME:
      if (v.length === 0) return false;
      if (code === DhcpOption.HOSTNAME) r.hostname = latin1(v);
      else r.domainName = latin1(v);
      return true;
    case DhcpOption.INTERFACE_MTU:
      if (v.length !== 2 || readU16(v, 0) < 68) return false;
      r.interfaceMtu = readU16(v, 0);
      return true;
    case DhcpOption.LEASE_TIME:
    case DhcpOption.RENEWAL_TIME:
    case DhcpOption.REBINDING_TIME: {
      if (v.length !== 4) return false;
      const t = readU32(v, 0);
      if (code === DhcpOption.LEASE_TIME) r.leaseTime = t;
      else if (code === DhcpOption.RENEWAL_TIME) r.renewalTime = t;
      else r.rebindingTime = t;
      return true;
    }
    case DhcpOption.MESSAGE_TYPE:
      if (v.length !== 1 || v[0] < 1 || v[0] > 8) return false;
      r.messageType = v[0];
      return true;
    case DhcpOption.PARAMETER_REQUEST_LIST:
      if (v.length === 0) return false;
      r.parameterRequestList = [...v];
      return true;
    case DhcpOption.CLIENT_ID:
      if (v.length < 2) return false;
      r.clientId = v.slice();
      return true;
    default:
      return true; // Unknown options are skipped (RFC 2131 §4.3.x: ignore what you don't know).
  }
}

type OptionWriter = [code: number, value: Uint8Array];

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  writeU32(b, 0, v);
  return b;
}

function addrs(list: Ipv4Address[]): Uint8Array {
  const b = new Uint8Array(list.length * 4);
  list.forEach((a, i) => writeIpv4(b, i * 4, a));
  return b;
}

function text(where: string, name: string, s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`${where}: ${name} must be Latin-1 text, got "${s}"`);
    b[i] = c;
  }
  return b;
}

/** The options of `repr` in emission order, each value at most 255 bytes. */
function optionList(repr: DhcpRepr): OptionWriter[] {
  const where = "DhcpRepr.emit";
  const o: OptionWriter[] = [];
  const addr = (name: string, a: Ipv4Address) => {
    checkUint(where, name, a, 0xffffffff);
    return u32(a);
  };
  const time = (name: string, t: number) => {
    checkUint(where, name, t, 0xffffffff);
    return u32(t);
  };
  if (repr.messageType !== undefined) {
    checkUint(where, "messageType", repr.messageType, 0xff);
    o.push([DhcpOption.MESSAGE_TYPE, Uint8Array.of(repr.messageType)]);
  }
  if (repr.serverId !== undefined) {
    o.push([DhcpOption.SERVER_ID, addr("serverId", repr.serverId)]);
  }
  if (repr.leaseTime !== undefined) {
    o.push([DhcpOption.LEASE_TIME, time("leaseTime", repr.leaseTime)]);
  }
  if (repr.renewalTime !== undefined) {
    o.push([DhcpOption.RENEWAL_TIME, time("renewalTime", repr.renewalTime)]);
  }
  if (repr.rebindingTime !== undefined) {
    o.push([DhcpOption.REBINDING_TIME, time("rebindingTime", repr.rebindingTime)]);
  }
  if (repr.subnetMask !== undefined) {
    o.push([DhcpOption.SUBNET_MASK, addr("subnetMask", repr.subnetMask)]);
  }
  for (
    const [code, list, name] of [
      [DhcpOption.ROUTER, repr.routers, "routers"],
      [DhcpOption.DNS_SERVER, repr.dnsServers, "dnsServers"],
    ] as const
  ) {
    if (list === undefined) continue;
    list.forEach((a, i) => checkUint(where, `${name}[${i}]`, a, 0xffffffff));
    o.push([code, addrs(list)]);
  }
  if (repr.domainName !== undefined) {
    o.push([DhcpOption.DOMAIN_NAME, text(where, "domainName", repr.domainName)]);
  }
  if (repr.hostname !== undefined) {
    o.push([DhcpOption.HOSTNAME, text(where, "hostname", repr.hostname)]);
  }
  if (repr.interfaceMtu !== undefined) {
    checkUint(where, "interfaceMtu", repr.interfaceMtu, 0xffff);
    const b = new Uint8Array(2);
    writeU16(b, 0, repr.interfaceMtu);
    o.push([DhcpOption.INTERFACE_MTU, b]);
  }
  if (repr.requestedIp !== undefined) {
    o.push([DhcpOption.REQUESTED_IP, addr("requestedIp", repr.requestedIp)]);
  }
  if (repr.parameterRequestList !== undefined) {
    repr.parameterRequestList.forEach((c, i) =>
      checkUint(where, `parameterRequestList[${i}]`, c, 0xff)
    );
    o.push([DhcpOption.PARAMETER_REQUEST_LIST, Uint8Array.from(repr.parameterRequestList)]);
  }
  if (repr.clientId !== undefined) o.push([DhcpOption.CLIENT_ID, repr.clientId]);
  for (const [code, v] of o) {
    if (v.length < 1 || v.length > 255) {
      throw new RangeError(
        `${where}: option ${code} must hold 1..255 bytes, got ${v.length}`,
      );
    }
  }
  return o;
}

/**
 * Converts between {@link DhcpPacket} and {@link DhcpRepr}.
 *
 * @example
 * ```ts
 * const buf = new Uint8Array(DhcpRepr.bufferLen(repr));
 * DhcpRepr.emit(repr, buf);
 * const back = DhcpRepr.parse(DhcpPacket.parse(buf).value);
 * ```
 */
export const DhcpRepr = {
  /**
   * Reads the fixed fields and walks the options up to the end option (or
   * the end of the message).
   *
   * Reasons: `dhcp_unsupported_hardware` (not Ethernet: htype 1, hlen 6),
   * `dhcp_bad_option` (an option runs past the message or has a length its
   * code does not allow).
   */
  parse(pkt: DhcpPacket): ParseResult<DhcpRepr> {
    const b = pkt.bytes;
    if (b[1] !== 1 || b[2] !== 6) return fail("dhcp_unsupported_hardware");
    const r: DhcpRepr = {
      op: b[0],
      hops: b[3],
      xid: readU32(b, 4),
      secs: readU16(b, 8),
      broadcast: (readU16(b, 10) & FLAG_BROADCAST) !== 0,
      ciaddr: readIpv4(b, 12),
      yiaddr: readIpv4(b, 16),
      siaddr: readIpv4(b, 20),
      giaddr: readIpv4(b, 24),
      chaddr: b.slice(28, 34),
    };
    let i = DHCP_MIN_LEN;
    while (i < b.length) {
      const code = b[i];
      if (code === DhcpOption.END) break;
      if (code === DhcpOption.PAD) {
        i++;
        continue;
      }
      if (i + 1 >= b.length) return fail("dhcp_bad_option");
      const len = b[i + 1];
      const end = i + 2 + len;
      if (end > b.length) return fail("dhcp_bad_option");
      if (!applyOption(r, code, b.subarray(i + 2, end))) return fail("dhcp_bad_option");
      i = end;
    }
    return ok(r);
  },

  /**
   * Writes the message: fixed fields, cookie, options, end option, and zero
   * padding up to 300 bytes. Writes every byte of `buf[0..bufferLen)`.
   *
   * @throws {RangeError} when `buf` is too small or a field is out of range.
   * @throws {TypeError} when `chaddr` is not 6 bytes.
   */
  emit(repr: DhcpRepr, buf: Uint8Array): void {
    const where = "DhcpRepr.emit";
    const opts = optionList(repr);
    const len = lenOf(opts);
    checkBuffer(where, buf, len);
    checkMac(where, "chaddr", repr.chaddr);
    checkUint(where, "op", repr.op, 0xff);
    checkUint(where, "hops", repr.hops, 0xff);
    checkUint(where, "xid", repr.xid, 0xffffffff);
    checkUint(where, "secs", repr.secs, 0xffff);
    for (const k of ["ciaddr", "yiaddr", "siaddr", "giaddr"] as const) {
      checkUint(where, k, repr[k], 0xffffffff);
    }
    buf.fill(0, 0, len);
    buf[0] = repr.op;
    buf[1] = 1;
    buf[2] = 6;
    buf[3] = repr.hops;
    writeU32(buf, 4, repr.xid);
    writeU16(buf, 8, repr.secs);
    writeU16(buf, 10, repr.broadcast ? FLAG_BROADCAST : 0);
    writeIpv4(buf, 12, repr.ciaddr);
    writeIpv4(buf, 16, repr.yiaddr);
    writeIpv4(buf, 20, repr.siaddr);
    writeIpv4(buf, 24, repr.giaddr);
    buf.set(repr.chaddr, 28);
    writeU32(buf, DHCP_FIXED_LEN, DHCP_MAGIC_COOKIE);
    let i = DHCP_MIN_LEN;
    for (const [code, v] of opts) {
      buf[i] = code;
      buf[i + 1] = v.length;
      buf.set(v, i + 2);
      i += 2 + v.length;
    }
    buf[i] = DhcpOption.END;
  },

  /** The message length: 240 + options + end, at least 300. */
  bufferLen(repr: DhcpRepr): number {
    return lenOf(optionList(repr));
  },
};

function lenOf(opts: OptionWriter[]): number {
  let n = DHCP_MIN_LEN + 1;
  for (const [, v] of opts) n += 2 + v.length;
  return Math.max(DHCP_MIN_EMIT_LEN, n);
}
