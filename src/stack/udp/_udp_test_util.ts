/**
 * Test helpers for UDP (TESTING.md ring 1): the stack test kit
 * (`../_stack_test_util.ts`) with a harness that injects UDP datagrams.
 *
 * @module
 */

import {
  PEER_IP,
  PEER_MAC,
  type PeerDatagram,
  STACK_IP,
  STACK_MAC,
  StackHarness,
  type StackHarnessOptions,
  udpFrame,
} from "../_stack_test_util.ts";

export {
  BROADCAST_MAC,
  type DecodedIp,
  decodeIcmp,
  decodeIp,
  decodeUdp,
  fromHex,
  hex,
  internetChecksum,
  ipFrame,
  type PeerDatagram,
  type PeerFrameOptions,
  u16,
  udpFrame,
} from "../_stack_test_util.ts";

/** The stack's address (the TCP harness uses the same). */
export const HARNESS_STACK_IP: number = STACK_IP;
/** The peer's address. */
export const HARNESS_PEER_IP: number = PEER_IP;
/** The stack's MAC. */
export const HARNESS_STACK_MAC: Uint8Array = STACK_MAC;
/** The peer's MAC. */
export const HARNESS_PEER_MAC: Uint8Array = PEER_MAC;

/** A stack under test with the peer's MAC pre-resolved, fed UDP datagrams. */
export class UdpHarness extends StackHarness {
  /** Creates a stack at 10.0.2.2/24 (seeded randomness) that knows 10.0.2.15's MAC. */
  constructor(options: StackHarnessOptions = {}) {
    super(options);
  }

  /** Injects a UDP datagram from the peer at the current instant. */
  inject(d: PeerDatagram): void {
    this.stack.input(udpFrame(d), this.now);
  }
}
