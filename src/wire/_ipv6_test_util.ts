/**
 * Golden IPv6 frames shared by the IPv6, ICMPv6 and NDP tests (wire and
 * stack). Not re-exported by `mod.ts`.
 *
 * Built from RFC 4443 / RFC 4861 by hand and cross-checked with tshark
 * (`text2pcap` then `tshark -V`: every ICMPv6 checksum "[correct]", every
 * field decoded as written here). Unpadded, as read from a TAP device.
 *
 * @module
 */

import { hex } from "./_test_util.ts";

/** 52:54:00:12:34:56, the Linux side (QEMU's default MAC). */
export const V6_PEER_MAC: Uint8Array = hex("525400123456");
/** 02:00:00:00:00:01, the netisle side. */
export const V6_STACK_MAC: Uint8Array = hex("020000000001");
/** fe80::5054:ff:fe12:3456, Linux's link-local address (modified EUI-64 of its MAC). */
export const V6_PEER_LINK_LOCAL = "fe80::5054:ff:fe12:3456";
/** fd00::5054:ff:fe12:3456, Linux's SLAAC address in fd00::/64. */
export const V6_PEER_ULA = "fd00::5054:ff:fe12:3456";
/** fe80::ff:fe00:1, the stack's link-local address (modified EUI-64 of 02:00:00:00:00:01). */
export const V6_STACK_LINK_LOCAL = "fe80::ff:fe00:1";

/** Linux `ping -6 fd00::2` from its SLAAC address: echo request id 0x0a1b seq 1, data "abcdefgh", hop limit 64. */
export const GOLDEN_ECHO: Uint8Array = hex(
  "02000000000152540012345686dd6000000000103a40fd000000000000005054" +
    "00fffe123456fd000000000000000000000000000002800066430a1b00016162" +
    "636465666768",
);

/** Linux resolving fd00::2: neighbour solicitation from its link-local address to the solicited-node group ff02::1:ff00:2, with its link-layer address. */
export const GOLDEN_NS: Uint8Array = hex(
  "3333ff00000252540012345686dd6000000000203afffe800000000000005054" +
    "00fffe123456ff0200000000000000000001ff000002870073a000000000fd00" +
    "00000000000000000000000000020101525400123456",
);

/** The stack's answer to GOLDEN_NS: a solicited advertisement (R, S, O) for fd00::2 with its link-layer address. */
export const GOLDEN_NA: Uint8Array = hex(
  "52540012345602000000000186dd6000000000203afffd000000000000000000" +
    "000000000002fe80000000000000505400fffe1234568800175fe0000000fd00" +
    "00000000000000000000000000020201020000000001",
);

/** The stack's router advertisement to all nodes: hop limit 64, router lifetime 0, MTU 1500, prefix fd00::/64 (L, A; valid 86400 s, preferred 14400 s), RDNSS fd00::2 for 1200 s. */
export const GOLDEN_RA: Uint8Array = hex(
  "33330000000102000000000186dd6000000000583afffe800000000000000000" +
    "00fffe000001ff020000000000000000000000000001860049cb400000000000" +
    "000000000000010102000000000105010000000005dc030440c0000151800000" +
    "384000000000fd00000000000000000000000000000019030000000004b0fd00" +
    "0000000000000000000000000002",
);

/** Linux soliciting routers: router solicitation to ff02::2 with its link-layer address. */
export const GOLDEN_RS: Uint8Array = hex(
  "33330000000252540012345686dd6000000000103afffe800000000000005054" +
    "00fffe123456ff020000000000000000000000000002850071b5000000000101" +
    "525400123456",
);

/** The stack's parameter problem (code 1, unrecognized next header, pointer 6) quoting the first 48 bytes of GOLDEN_ECHO's packet. */
export const GOLDEN_PP: Uint8Array = hex(
  "52540012345602000000000186dd6000000000383a40fd000000000000000000" +
    "000000000002fd00000000000000505400fffe12345604017555000000066000" +
    "000000103a40fd00000000000000505400fffe123456fd000000000000000000" +
    "000000000002800066430a1b0001",
);

/** A packet too big (MTU 1280) to the stack quoting the first 48 bytes of GOLDEN_ECHO's packet. */
export const GOLDEN_PTB: Uint8Array = hex(
  "02000000000152540012345686dd6000000000383a40fd000000000000005054" +
    "00fffe123456fd0000000000000000000000000000020200725c000005006000" +
    "000000103a40fd00000000000000505400fffe123456fd000000000000000000" +
    "000000000002800066430a1b0001",
);
