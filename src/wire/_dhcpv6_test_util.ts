/**
 * Golden DHCPv6 messages shared by the wire and stack tests (hex). Not
 * re-exported by `mod.ts`.
 *
 * @module
 */

/**
 * A client's Information-request (RFC 8415 §18.2.6): transaction 0x1a2b3c,
 * Client Identifier DUID-LLT (type 1, Ethernet, time 0x2d3e4f50, MAC
 * 52:54:00:12:34:56), Option Request for DNS servers (23) and domain list
 * (24), Elapsed Time 0. Decoded by tshark as written.
 */
export const INFO_REQUEST_HEX = "0b1a2b3c" + "0001000e000100012d3e4f50525400123456" +
  "000600040017" + "0018" + "000800020000";

/**
 * The stack's Reply to it (RFC 8415 §18.3.6): the Client Identifier copied,
 * our DUID-LL, DNS fd00::2, refresh 86400 s (decoded by `tshark -V` as
 * written, in the frame of `src/stack/dhcpv6_server_test.ts`).
 */
export const INFO_REPLY_HEX = "071a2b3c" + "0001000e000100012d3e4f50525400123456" +
  "0002000a00030001020000000001" + "00170010fd000000000000000000000000000002" +
  "0020000400015180";
