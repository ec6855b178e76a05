/**
 * Runtime adapter: outbound TCP with `Deno.connect` and the system resolver
 * with `Deno.resolveDns` (UDP comes from node_net.ts). Thin by design: all
 * egress logic is in the runtime-neutral gateway.
 *
 * A reset towards the server cannot be asked for (Deno has no SO_LINGER):
 * `close(true)` closes, which the kernel turns into a RST only when unread
 * data is left.
 *
 * @module
 */

import { classifyDialError, type DialedTcp, DialError, type EgressDialer } from "./dialer.ts";
import type { SystemDnsLookup } from "./dns/system_upstream.ts";
import type { SystemDnsRecord } from "./dns/dns_message.ts";
import { nodeDgramUdp } from "./node_net.ts";

/** A {@linkcode DialedTcp} over a `Deno.TcpConn`. */
class DenoTcp implements DialedTcp {
  #conn: Deno.TcpConn;
  #buf = new Uint8Array(0);
  #closed = false;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    conn.setNoDelay(true);
  }

  async read(max: number): Promise<Uint8Array | null> {
    // One buffer, reused while the requested size stays within 4x of it.
    if (this.#buf.length < max || this.#buf.length > 4 * max) this.#buf = new Uint8Array(max);
    const n = await this.#conn.read(this.#buf.subarray(0, max));
    return n === null ? null : this.#buf.subarray(0, n);
  }

  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) off += await this.#conn.write(data.subarray(off));
  }

  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  close(_reset?: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}

/**
 * The Deno dialer: `Deno.connect` for TCP, `node:dgram` for UDP.
 *
 * @example
 * ```ts
 * const service = new EgressService({ dialer: denoDialer(), policy, upstream });
 * ```
 */
export function denoDialer(): EgressDialer {
  return {
    name: "deno",
    async connectTcp(address, port, options = {}) {
      try {
        const conn = await Deno.connect({
          hostname: address,
          port,
          transport: "tcp",
          signal: options.signal,
          autoSelectFamily: false,
        });
        if (options.signal?.aborted) {
          conn.close();
          throw options.signal.reason;
        }
        return new DenoTcp(conn);
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason;
        throw new DialError(
          classifyDialError(err),
          `connect to ${address}:${port}: ${(err as Error).message}`,
        );
      }
    },
    openUdp: nodeDgramUdp,
  };
}

/**
 * The system resolver with `Deno.resolveDns`.
 *
 * @example
 * ```ts
 * const upstream = new SystemDnsUpstream(denoSystemDns());
 * ```
 */
export function denoSystemDns(): SystemDnsLookup {
  return {
    async lookup(name, type, signal): Promise<SystemDnsRecord[]> {
      const o = { signal };
      switch (type) {
        case "A":
        case "AAAA":
        case "CNAME":
        case "NS":
        case "PTR":
          return (await Deno.resolveDns(name, type, o)).map((value) => ({ type, value }));
        case "MX":
          return (await Deno.resolveDns(name, type, o)).map((m) => ({ type, ...m }));
        case "TXT":
          return (await Deno.resolveDns(name, type, o)).map((strings) => ({ type, strings }));
        case "SRV":
          return (await Deno.resolveDns(name, type, o)).map((s) => ({ type, ...s }));
        case "SOA":
          return (await Deno.resolveDns(name, type, o)).map((s) => ({ type, ...s }));
      }
    },
    isNotFound: (err) => err instanceof Deno.errors.NotFound,
  };
}
