/**
 * Runtime adapter (node: modules, which Deno and Bun both provide): outbound
 * UDP sockets with `node:dgram`, the system resolver with `node:dns`, and the
 * machine's own addresses with `node:os`. Not in the library bundle's graph
 * (mod.ts); the server entry points import it.
 *
 * A UDP socket is unconnected, except while it has sent to one destination
 * only: then it is connected to it, so that the kernel reports an ICMP port
 * unreachable as `ECONNREFUSED` (Linux reports errors on connected UDP
 * sockets only; Bun passes them on, Deno's `node:dgram` does not).
 *
 * @module
 */

import dgram from "node:dgram";
import { Resolver } from "node:dns/promises";
import { networkInterfaces } from "node:os";
import type { DialedUdp, UdpHandlers } from "./dialer.ts";
import type { SystemDnsLookup } from "./dns/system_upstream.ts";
import type { SystemDnsRecord } from "./dns/dns_message.ts";

/**
 * Opens an outbound UDP socket on an ephemeral port of `family` (`udp4`,
 * or `udp6` for IPv6 destinations).
 *
 * @example
 * ```ts
 * const dialer = { ...denoTcp, openUdp: nodeDgramUdp };
 * ```
 */
export function nodeDgramUdp(handlers: UdpHandlers, family: 4 | 6 = 4): Promise<DialedUdp> {
  const sock = dgram.createSocket({ type: family === 6 ? "udp6" : "udp4" });
  let closed = false;
  let connected: string | undefined;
  let connecting: Promise<void> | undefined;
  let unconnected = false;
  sock.on("message", (msg, rinfo) => {
    if (!closed) {
      handlers.message(
        new Uint8Array(msg.buffer, msg.byteOffset, msg.length),
        rinfo.address,
        rinfo.port,
      );
    }
  });
  sock.on("error", (err: Error & { code?: string }) => {
    if (!closed) {
      handlers.error(err.code ?? "EIO", connected?.split("|")[0], Number(connected?.split("|")[1]));
    }
  });
  const send = (data: Uint8Array, address?: string, port?: number) =>
    new Promise<void>((resolve, reject) => {
      const done = (err: Error | null) => (err ? reject(err) : resolve());
      if (address === undefined) sock.send(data, done);
      else sock.send(data, port, address, done);
    });
  return new Promise<DialedUdp>((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(0, () => {
      sock.off("error", reject);
      resolve({
        async send(data, address, port) {
          if (closed) throw new Error("the UDP socket is closed");
          const dest = `${address}|${port}`;
          if (!unconnected && connected === undefined) {
            connected = dest;
            connecting = new Promise<void>((res) => sock.connect(port, address, () => res()));
          }
          if (connecting) await connecting;
          if (!unconnected && connected !== dest) {
            // A second destination: from now on the socket sends anywhere.
            sock.disconnect();
            unconnected = true;
            connected = undefined;
          }
          return unconnected ? send(data, address, port) : send(data);
        },
        close() {
          if (closed) return;
          closed = true;
          try {
            sock.close();
          } catch {
            // Already closed.
          }
        },
      });
    });
  });
}

/**
 * The system resolver through `node:dns` (Bun; Deno has its own adapter):
 * a fresh `Resolver` per lookup, cancelled when the signal aborts.
 *
 * @example
 * ```ts
 * const upstream = new SystemDnsUpstream(nodeSystemDns());
 * ```
 */
export function nodeSystemDns(): SystemDnsLookup {
  return {
    async lookup(name, type, signal): Promise<SystemDnsRecord[]> {
      const r = new Resolver();
      const cancel = () => r.cancel();
      signal.addEventListener("abort", cancel, { once: true });
      try {
        switch (type) {
          case "A":
          case "AAAA": {
            const list = type === "A"
              ? await r.resolve4(name, { ttl: true })
              : await r.resolve6(name, { ttl: true });
            return list.map((a) => ({ type, value: a.address, ttl: a.ttl }));
          }
          case "CNAME":
            return (await r.resolveCname(name)).map((value) => ({ type, value }));
          case "NS":
            return (await r.resolveNs(name)).map((value) => ({ type, value }));
          case "PTR":
            return (await r.resolvePtr(name)).map((value) => ({ type, value }));
          case "MX":
            return (await r.resolveMx(name)).map((m) => ({
              type,
              preference: m.priority,
              exchange: m.exchange,
            }));
          case "TXT":
            return (await r.resolveTxt(name)).map((strings) => ({ type, strings }));
          case "SRV":
            return (await r.resolveSrv(name)).map((s) => ({
              type,
              priority: s.priority,
              weight: s.weight,
              port: s.port,
              target: s.name,
            }));
          case "SOA": {
            const s = await r.resolveSoa(name);
            return [{
              type,
              mname: s.nsname,
              rname: s.hostmaster,
              serial: s.serial,
              refresh: s.refresh,
              retry: s.retry,
              expire: s.expire,
              minimum: s.minttl,
            }];
          }
        }
      } finally {
        signal.removeEventListener("abort", cancel);
      }
    },
    isNotFound(err) {
      const code = (err as { code?: string })?.code;
      return code === "ENOTFOUND" || code === "ENODATA";
    },
  };
}

/**
 * The addresses of this machine's interfaces (loopback included), for the
 * policy's "the server's own addresses" when the server listens on a
 * wildcard address.
 *
 * @example
 * ```ts
 * hostAddresses(); // ["127.0.0.1", "::1", "198.18.0.1", ...]
 * ```
 */
export function hostAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.push(a.address.replace(/%.*$/, ""));
  }
  return out;
}
