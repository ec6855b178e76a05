/**
 * Randomized robustness test: thousands of random, mutated, truncated and
 * padded frames go through every parser. Nothing may throw, every rejection
 * must carry a listed reason, every accessor of an accepted packet must stay
 * inside its bytes, and every accepted repr must survive emit -> parse.
 *
 * The seed is printed; replay a failure with `WIRE_FUZZ_SEED=<seed>`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ParseResult, WIRE_DROP_REASONS } from "./parse_result.ts";
import { EthernetFrame, EthernetRepr, EtherType } from "./ethernet.ts";
import { ArpPacket, ArpRepr } from "./arp.ts";
import { IpProtocol, Ipv4Packet, Ipv4Repr } from "./ipv4.ts";
import { Icmpv4Packet, Icmpv4Repr } from "./icmpv4.ts";
import { UdpPacket, UdpRepr } from "./udp.ts";
import { parseTcpOptions, TcpPacket, TcpRepr } from "./tcp.ts";
import { checksumAdd, checksumFinish, ipv4PseudoHeaderSum } from "./checksum.ts";
import { type SeededRandom, seededRandom } from "./random.ts";
import { atOffset, GOLDEN_FRAMES, GOLDEN_SYN } from "./_test_util.ts";
import type { IpAddress } from "./ip_address.ts";
import { parseIpv6Address } from "./ipv6_address.ts";

const V6_SRC = parseIpv6Address("fd00::5054:ff:fe12:3456");
const V6_DST = parseIpv6Address("fd00::2");

const ITERATIONS = 20_000;
const KNOWN_REASONS = new Set(WIRE_DROP_REASONS);

function envSeed(): number | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env;
  const text = env?.WIRE_FUZZ_SEED;
  return text === undefined || text === "" ? undefined : Number(text);
}

/** Tallies of what the fuzzer reached, so that it demonstrably goes deep. */
type Stats = Map<string, number>;

function count(stats: Stats, key: string): void {
  stats.set(key, (stats.get(key) ?? 0) + 1);
}

function check<T>(stats: Stats, name: string, result: ParseResult<T>): T | undefined {
  if (result.ok) {
    count(stats, `${name}:ok`);
    return result.value;
  }
  assert.ok(KNOWN_REASONS.has(result.reason), `${name} gave unlisted reason ${result.reason}`);
  count(stats, result.reason);
  return undefined;
}

/**
 * Calls every getter of a packet view: numbers must be non-negative
 * integers, views must lie inside the packet's bytes.
 */
function touchAccessors(name: string, pkt: { bytes: Uint8Array }): void {
  const proto = Object.getPrototypeOf(pkt);
  const bytes = pkt.bytes;
  for (const [key, desc] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
    if (desc.get === undefined) continue;
    const v: unknown = desc.get.call(pkt);
    if (typeof v === "number") {
      assert.ok(Number.isInteger(v) && v >= 0, `${name}.${key} = ${v}`);
    } else if (v instanceof Uint8Array) {
      assert.equal(v.buffer, bytes.buffer, `${name}.${key} is a view`);
      assert.ok(
        v.byteOffset >= bytes.byteOffset &&
          v.byteOffset + v.length <= bytes.byteOffset + bytes.length,
        `${name}.${key} stays inside the packet`,
      );
    } else {
      assert.equal(typeof v, "boolean", `${name}.${key}`);
    }
  }
}

function exerciseIcmp(stats: Stats, bytes: Uint8Array): void {
  const pkt = check(stats, "Icmpv4Packet", Icmpv4Packet.parse(bytes));
  if (pkt === undefined) return;
  touchAccessors("Icmpv4Packet", pkt);
  const repr = check(stats, "Icmpv4Repr", Icmpv4Repr.parse(pkt));
  if (repr === undefined) return;
  const buf = new Uint8Array(Icmpv4Repr.bufferLen(repr));
  Icmpv4Repr.emit(repr, buf);
  const again = Icmpv4Packet.parse(buf);
  assert.ok(again.ok);
  assert.deepEqual(Icmpv4Repr.parse(again.value), { ok: true, value: repr });
}

function exerciseUdp(stats: Stats, bytes: Uint8Array, src: IpAddress, dst: IpAddress): void {
  const pkt = check(stats, "UdpPacket", UdpPacket.parse(bytes));
  if (pkt === undefined) return;
  touchAccessors("UdpPacket", pkt);
  pkt.verifyChecksum(src, dst);
  const repr = check(stats, "UdpRepr", UdpRepr.parse(pkt, src, dst));
  if (repr === undefined) return;
  const buf = new Uint8Array(UdpRepr.bufferLen(repr));
  UdpRepr.emit(repr, buf, src, dst);
  const again = UdpPacket.parse(buf);
  assert.ok(again.ok);
  assert.deepEqual(UdpRepr.parse(again.value, src, dst), { ok: true, value: repr });
}

function exerciseTcp(stats: Stats, bytes: Uint8Array, src: number, dst: number): void {
  const pkt = check(stats, "TcpPacket", TcpPacket.parse(bytes));
  if (pkt === undefined) return;
  touchAccessors("TcpPacket", pkt);
  check(stats, "parseTcpOptions", parseTcpOptions(pkt.options));
  const repr = check(stats, "TcpRepr", TcpRepr.parse(pkt, src, dst));
  if (repr === undefined) return;
  let len: number;
  try {
    len = TcpRepr.bufferLen(repr);
  } catch (e) {
    // Options packed tighter by the sender than our NOP-aligned layout allows.
    assert.ok(e instanceof RangeError);
    count(stats, "TcpRepr:too_many_options_to_re-emit");
    return;
  }
  const buf = new Uint8Array(len);
  TcpRepr.emit(repr, buf, src, dst);
  const again = TcpPacket.parse(buf);
  assert.ok(again.ok);
  assert.deepEqual(TcpRepr.parse(again.value, src, dst), { ok: true, value: repr });
}

function exerciseIpv4(stats: Stats, bytes: Uint8Array): void {
  const truncated = check(stats, "Ipv4Packet.parseTruncated", Ipv4Packet.parseTruncated(bytes));
  if (truncated !== undefined) touchAccessors("Ipv4Packet", truncated);
  const pkt = check(stats, "Ipv4Packet", Ipv4Packet.parse(bytes));
  if (pkt === undefined) return;
  touchAccessors("Ipv4Packet", pkt);
  const repr = check(stats, "Ipv4Repr", Ipv4Repr.parse(pkt));
  if (repr !== undefined) {
    assert.equal(repr.payloadLen, pkt.payload.length);
    const buf = new Uint8Array(Ipv4Repr.bufferLen(repr));
    Ipv4Repr.emit(repr, buf);
    const again = Ipv4Packet.parse(buf);
    assert.ok(again.ok);
    assert.deepEqual(Ipv4Repr.parse(again.value), { ok: true, value: repr });
  }
  // Feed the payload to every transport regardless of the protocol field.
  const payload = pkt.payload;
  exerciseIcmp(stats, payload);
  exerciseUdp(stats, payload, pkt.src, pkt.dst);
  exerciseTcp(stats, payload, pkt.src, pkt.dst);
}

function exerciseArp(stats: Stats, bytes: Uint8Array): void {
  const pkt = check(stats, "ArpPacket", ArpPacket.parse(bytes));
  if (pkt === undefined) return;
  touchAccessors("ArpPacket", pkt);
  const repr = check(stats, "ArpRepr", ArpRepr.parse(pkt));
  if (repr === undefined) return;
  const buf = new Uint8Array(ArpRepr.bufferLen());
  ArpRepr.emit(repr, buf);
  const again = ArpPacket.parse(buf);
  assert.ok(again.ok);
  assert.deepEqual(ArpRepr.parse(again.value), { ok: true, value: repr });
}

/** Runs every parser over a frame and over the same bytes taken as each layer. */
function exercise(stats: Stats, frame: Uint8Array): void {
  const eth = check(stats, "EthernetFrame", EthernetFrame.parse(frame));
  if (eth !== undefined) {
    touchAccessors("EthernetFrame", eth);
    const repr = EthernetRepr.parse(eth);
    const buf = new Uint8Array(EthernetRepr.bufferLen(0));
    EthernetRepr.emit(repr, buf);
    assert.deepEqual(buf, frame.subarray(0, 14));
    exerciseArp(stats, eth.payload);
    exerciseIpv4(stats, eth.payload);
  }
  exerciseArp(stats, frame);
  exerciseIpv4(stats, frame);
  exerciseIcmp(stats, frame);
  exerciseUdp(stats, frame, 0x0a00020f, 0x0a000202);
  // The same bytes as UDP over IPv6: a zero checksum is invalid there (RFC 8200 §8.1).
  exerciseUdp(stats, frame, V6_SRC, V6_DST);
  exerciseTcp(stats, frame, 0x0a00020f, 0x0a000202);
}

function storeChecksum(bytes: Uint8Array, at: number, sum: number, zeroAs = 0): void {
  const c = checksumFinish(sum);
  const v = c === 0 ? zeroAs : c;
  bytes[at] = v >>> 8;
  bytes[at + 1] = v & 0xff;
}

/** Repairs the IPv4 and transport checksums of a mutated frame, when the layout allows. */
function fixChecksums(frame: Uint8Array): void {
  if (frame.length < 34 || ((frame[12] << 8) | frame[13]) !== EtherType.IPV4) return;
  const ip = Ipv4Packet.parse(frame.subarray(14));
  if (!ip.ok) return;
  const pkt = ip.value;
  const header = pkt.bytes;
  header[10] = 0;
  header[11] = 0;
  storeChecksum(header, 10, checksumAdd(0, header, 0, pkt.headerLen));
  const l4 = pkt.payload;
  const pseudo = (len: number) => ipv4PseudoHeaderSum(pkt.src, pkt.dst, pkt.protocol, len);
  if (pkt.protocol === IpProtocol.ICMP && l4.length >= 8) {
    l4[2] = 0;
    l4[3] = 0;
    storeChecksum(l4, 2, checksumAdd(0, l4));
  } else if (pkt.protocol === IpProtocol.UDP && l4.length >= 8) {
    const len = (l4[4] << 8) | l4[5];
    if (len < 8 || len > l4.length) return;
    l4[6] = 0;
    l4[7] = 0;
    storeChecksum(l4, 6, checksumAdd(pseudo(len), l4, 0, len), 0xffff);
  } else if (pkt.protocol === IpProtocol.TCP && l4.length >= 20) {
    l4[16] = 0;
    l4[17] = 0;
    storeChecksum(l4, 16, checksumAdd(pseudo(l4.length), l4));
  }
}

const INTERESTING = [0x00, 0x01, 0x02, 0x04, 0x05, 0x07, 0x08, 0x0a, 0x45, 0x4f, 0x7f, 0x80, 0xff];

function pick<T>(rng: SeededRandom, items: readonly T[]): T {
  return items[Math.floor(rng.next() * items.length)];
}

function randomInt(rng: SeededRandom, n: number): number {
  return Math.floor(rng.next() * n);
}

/** One fuzz input: random bytes or a mutated golden frame. */
function makeInput(rng: SeededRandom): Uint8Array {
  const strategy = randomInt(rng, 7);
  if (strategy === 0) {
    const bytes = new Uint8Array(randomInt(rng, 120));
    rng.fill(bytes);
    return bytes;
  }
  let frame = pick(rng, GOLDEN_FRAMES).slice();
  switch (strategy) {
    case 1: // flip a few bits
      for (let n = 1 + randomInt(rng, 4); n > 0; n--) {
        const i = randomInt(rng, frame.length);
        frame[i] ^= 1 << randomInt(rng, 8);
      }
      break;
    case 2: // set bytes to boundary values
      for (let n = 1 + randomInt(rng, 3); n > 0; n--) {
        frame[randomInt(rng, frame.length)] = pick(rng, INTERESTING);
      }
      break;
    case 3: // truncate
      frame = frame.subarray(0, randomInt(rng, frame.length + 1));
      break;
    case 4: { // append padding or junk
      const longer = new Uint8Array(frame.length + 1 + randomInt(rng, 40));
      rng.fill(longer);
      longer.set(frame);
      frame = longer;
      break;
    }
    case 5: { // random TCP options after the golden SYN header
      const words = randomInt(rng, 11);
      const syn = new Uint8Array(54 + words * 4 + randomInt(rng, 8));
      syn.set(GOLDEN_SYN.subarray(0, 54));
      rng.fill(syn.subarray(54));
      for (let i = 54; i < 54 + words * 4; i++) {
        if (rng.next() < 0.3) syn[i] = pick(rng, [0, 1, 2, 3, 4, 5, 8, 10, 18, 34]);
      }
      syn[14 + 20 + 12] = (5 + words) << 4;
      const ipLen = syn.length - 14;
      syn[16] = ipLen >>> 8;
      syn[17] = ipLen & 0xff;
      frame = syn;
      break;
    }
    default: // mutate a header field region heavily
      for (let i = 14; i < Math.min(frame.length, 60); i++) {
        if (rng.next() < 0.1) frame[i] = rng.u32() & 0xff;
      }
  }
  if (rng.next() < 0.6) fixChecksums(frame);
  return frame;
}

describe("wire parsers under random input", () => {
  it("never throw, report listed reasons, and round-trip what they accept", () => {
    const seed = envSeed() ?? (Date.now() >>> 0);
    console.log(`wire fuzz seed: ${seed} (replay with WIRE_FUZZ_SEED=${seed})`);
    for (const s of [0x5eed, seed]) {
      const rng = seededRandom(s);
      const stats: Stats = new Map();
      for (let i = 0; i < ITERATIONS / 2; i++) {
        const input = makeInput(rng);
        try {
          exercise(stats, atOffset(input, randomInt(rng, 4)));
        } catch (e) {
          throw new Error(`seed ${s}, iteration ${i}, input ${Array.from(input).join(",")}`, {
            cause: e,
          });
        }
      }
      if (envSeed() !== undefined) console.log(Object.fromEntries(stats));
      // The fuzzer must reach the deep paths, not just bounce off the first check.
      for (
        const key of [
          "ArpRepr:ok",
          "Ipv4Repr:ok",
          "Icmpv4Repr:ok",
          "UdpRepr:ok",
          "TcpRepr:ok",
          "tcp_bad_option",
          "ipv4_bad_checksum",
          "tcp_bad_checksum",
        ]
      ) {
        assert.ok((stats.get(key) ?? 0) > 0, `seed ${s}: never reached ${key}`);
      }
    }
  });

  it("parseTcpOptions never throws on random option bytes", () => {
    const rng = seededRandom(2018);
    const buf = new Uint8Array(40);
    for (let i = 0; i < 5000; i++) {
      const opts = buf.subarray(0, randomInt(rng, 41));
      rng.fill(opts);
      for (let j = 0; j < opts.length; j++) {
        if (rng.next() < 0.4) opts[j] = pick(rng, [0, 1, 2, 3, 4, 5, 8, 10, 18, 26, 34]);
      }
      const result = parseTcpOptions(opts);
      if (!result.ok) assert.equal(result.reason, "tcp_bad_option");
      else if (result.value.windowScale !== undefined) assert.ok(result.value.windowScale <= 14);
    }
  });
});
