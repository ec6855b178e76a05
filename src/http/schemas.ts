/**
 * zod schemas for every body, query and path parameter of the HTTP API. The
 * same schemas validate requests and (later) generate the OpenAPI document.
 *
 * @module
 */

import { z } from "zod";
import {
  ipv4InSubnet,
  ipv4Netmask,
  ipv4SubnetBroadcast,
  ipv6InPrefix,
  ipv6Prefix,
  isIpv4Unicast,
  isIpv6Unicast,
  isMulticastMac,
  parseIpv4Address,
  parseIpv6Address,
  parseMacAddress,
} from "../wire/mod.ts";

/** What a session id looks like: `s_` and 22 base64url characters (16 random bytes). */
export const SESSION_ID_PATTERN = /^s_[A-Za-z0-9_-]{22}$/;

/** A session id as the registry makes them: `s_` and 22 base64url characters. */
export const SessionIdSchema = z.string().regex(SESSION_ID_PATTERN, {
  message: 'a session id is "s_" followed by 22 base64url characters',
});

/** Path parameters of session routes. */
export const SessionParamsSchema = z.strictObject({ sid: SessionIdSchema });

/**
 * The document's form of an IPv4 address: `format: ipv4` and zod's pattern
 * (the OpenAPI generator alone would write the vaguer `format: ip`).
 */
export const IPV4_DOC = { format: "ipv4", pattern: z.regexes.ipv4.source } as const;
/** How the OpenAPI document describes an IPv6 address (RFC 4291 §2.2 text). */
export const IPV6_DOC = { format: "ipv6" } as const;

/**
 * An IP address of either family in its text form: a dotted quad, or IPv6
 * (RFC 4291 §2.2, without a zone; the API answers in RFC 5952 form).
 */
export const IpAddressSchema = z.union([z.ipv4().meta(IPV4_DOC), z.ipv6().meta(IPV6_DOC)], {
  error: "an IPv4 address (e.g. 10.0.2.15) or an IPv6 address (e.g. fd00::15)",
});

const MAC_PATTERN = /^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/;
const IPV4_PATTERN = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** A unicast Ethernet address written as six hex pairs. */
export const MacSchema = z.string()
  .regex(MAC_PATTERN, {
    message: "a MAC address is six hex pairs separated by ':' (e.g. 02:00:00:00:00:02)",
  })
  .refine((s) => !MAC_PATTERN.test(s) || !isMulticastMac(parseMacAddress(s)), {
    message: "the MAC address must be unicast (the low bit of the first byte clear)",
  });

/** The stack's IPv4 address and on-link prefix. */
export const Ipv4ConfigSchema = z.strictObject({
  address: z.ipv4().meta(IPV4_DOC),
  prefixLength: z.int().min(1).max(30),
}).superRefine((v, ctx) => {
  // Refinements run even when a field failed; judge only well-formed values.
  if (!IPV4_PATTERN.test(v.address) || !(v.prefixLength >= 1 && v.prefixLength <= 30)) return;
  const addr = parseIpv4Address(v.address);
  if (!isIpv4Unicast(addr)) {
    // RFC 1122 §3.2.1.3: 0/8, 127/8, 224/4 and 240/4 never name a host.
    ctx.addIssue({
      code: "custom",
      path: ["address"],
      message: `${v.address} is not a unicast host address (0/8, loopback 127/8, multicast ` +
        "224/4 and reserved 240/4 are refused)",
    });
    return;
  }
  const network = (addr & ipv4Netmask(v.prefixLength)) >>> 0;
  if (addr === network || addr === ipv4SubnetBroadcast(addr, v.prefixLength)) {
    ctx.addIssue({
      code: "custom",
      path: ["address"],
      message: `${v.address} is the network or broadcast address of /${v.prefixLength}`,
    });
  }
  if (!ipv4InSubnet(addr, network, v.prefixLength)) {
    ctx.addIssue({ code: "custom", path: ["address"], message: "address outside its prefix" });
  }
});

/** Whether `text` is an IPv6 address in RFC 4291 text form. */
function isIpv6Text(text: string): boolean {
  try {
    parseIpv6Address(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * The session's IPv6 prefix (a /64: SLAAC needs one, RFC 4862 §5.5.3) and
 * the stack's address in it.
 */
export const Ipv6ConfigSchema = z.strictObject({
  prefix: z.string().max(64).describe('The on-link prefix, a /64 such as "fd00::/64".'),
  address: z.string().max(64).describe('The stack\'s address in the prefix, such as "fd00::2".'),
}).superRefine((v, ctx) => {
  const [net, len, ...rest] = v.prefix.split("/");
  if (len !== "64" || rest.length > 0 || !isIpv6Text(net)) {
    ctx.addIssue({
      code: "custom",
      path: ["prefix"],
      message: `"${v.prefix}" is not an IPv6 /64 prefix`,
    });
    return;
  }
  const prefix = parseIpv6Address(net);
  if (ipv6Prefix(prefix, 64) !== prefix || !isIpv6Unicast(prefix)) {
    ctx.addIssue({
      code: "custom",
      path: ["prefix"],
      message: `"${v.prefix}" must be a unicast /64 with its host bits zero`,
    });
    return;
  }
  if (!isIpv6Text(v.address)) {
    ctx.addIssue({
      code: "custom",
      path: ["address"],
      message: `"${v.address}" is not an IPv6 address`,
    });
    return;
  }
  const address = parseIpv6Address(v.address);
  if (!ipv6InPrefix(address, prefix, 64) || address === prefix) {
    ctx.addIssue({
      code: "custom",
      path: ["address"],
      message: `"${v.address}" is not a host address in ${v.prefix}`,
    });
  }
});

/** The DHCP server's settings at session creation (RFC 2131); absent fields take defaults. */
export const DhcpConfigSchema = z.strictObject({
  poolSize: z.int().min(1).max(4096).optional().describe(
    "Addresses in the pool (from .15 of the stack's subnet); 16 by default. It must fit in " +
      "the subnet.",
  ),
  leasesPerMac: z.int().min(1).max(4096).optional().describe(
    "Offers and bound leases one MAC address may hold across client identifiers; 1 by default.",
  ),
  leaseSeconds: z.int().min(60).max(7 * 24 * 3600).optional().describe(
    "Lease time in seconds; 86400 (24 h) by default.",
  ),
});

/** Body of `POST /v1/sessions`. Every field is optional; unknown fields are refused. */
export const CreateSessionBodySchema = z.strictObject({
  ipv4: Ipv4ConfigSchema.optional(),
  mac: MacSchema.optional(),
  mtu: z.int().min(576).max(65535).optional(),
  dhcp: z.union([z.boolean(), DhcpConfigSchema]).optional().describe(
    "Run a DHCP server in the session (guests from .15, the stack as router and DNS server): " +
      "true (the default, like QEMU's user networking), false, or its settings.",
  ),
  ipv6: z.union([z.literal(false), Ipv6ConfigSchema]).optional().describe(
    "IPv6 on the session's link: its /64 prefix and the stack's address (router " +
      'advertisements for SLAAC, neighbour discovery, ping); `{"prefix": "fd00::/64", ' +
      '"address": "fd00::2"}` by default, false for none.',
  ),
  egress: z.boolean().optional().describe(
    "Let the session's machine reach the world through the server (egress). Default: on when " +
      "the server runs with NETISLE_EGRESS=on; `true` on a server without egress is refused.",
  ),
});

/** The parsed body of `POST /v1/sessions`. */
export type CreateSessionBody = z.infer<typeof CreateSessionBodySchema>;

/** Query of the tunnel upgrade: the token may come here for clients that cannot set headers. */
export const TunnelQuerySchema = z.object({
  token: z.string().min(1).max(256).optional(),
});
