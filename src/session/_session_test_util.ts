/**
 * Test helpers for sessions: a session at 10.0.2.2/24 on a manual clock and
 * the ARP request a peer at 10.0.2.15 sends.
 *
 * @module
 */

import {
  ArpOperation,
  ArpRepr,
  ETHERNET_HEADER_LEN,
  EthernetRepr,
  EtherType,
  parseIpv4Address,
  parseMacAddress,
} from "../wire/mod.ts";
import { ManualClock } from "./clock.ts";
import { Session, type SessionLimits } from "./session.ts";

/** The peer's MAC address. */
export const PEER_MAC = parseMacAddress("52:54:00:12:34:56");
/** The stack's address, 10.0.2.2. */
export const STACK_IP = parseIpv4Address("10.0.2.2");
/** The peer's address, 10.0.2.15. */
export const PEER_IP = parseIpv4Address("10.0.2.15");

/** The 42-byte ARP request of the peer asking who has `targetIp`. */
export function arpRequest(targetIp = "10.0.2.2"): Uint8Array {
  const f = new Uint8Array(42);
  EthernetRepr.emit({
    dst: parseMacAddress("ff:ff:ff:ff:ff:ff"),
    src: PEER_MAC,
    etherType: EtherType.ARP,
  }, f);
  ArpRepr.emit({
    operation: ArpOperation.REQUEST,
    senderMac: PEER_MAC,
    senderIp: PEER_IP,
    targetMac: new Uint8Array(6),
    targetIp: parseIpv4Address(targetIp),
  }, f.subarray(ETHERNET_HEADER_LEN));
  return f;
}

/** A session at 10.0.2.2/24 (MAC 02:00:00:00:00:02) on `clock`, with no tunnel. */
export function makeSession(
  clock: ManualClock = new ManualClock(0),
  limits?: Partial<SessionLimits>,
): Session {
  return new Session({
    id: "s_test",
    token: "t",
    clock,
    stack: {
      mac: parseMacAddress("02:00:00:00:00:02"),
      ipv4: { address: STACK_IP, prefixLength: 24 },
      mtu: 1500,
    },
    limits,
  });
}
