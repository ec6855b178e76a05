/**
 * How the egress gateway enters its session's core: every answer to the
 * guest (a datagram, an ICMP error, a DNS answer, a TCP handshake) is a new
 * core entry under the session's lock, made outside any other entry; and
 * the quota charges the core handed over with its events are given back
 * here.
 *
 * @module
 */

import { type IpAddress, ipHeaderLen, IPV4_HEADER_LEN, UDP_HEADER_LEN } from "../../wire/mod.ts";
import type { Stack } from "../../stack/stack.ts";
import type { StackEgress } from "../../stack/stack_egress.ts";
import type { CoreAccess } from "../../socket/tcp_socket.ts";

/** What the gateway needs from a session: its core entry, clock, stack and id. */
export interface EgressHost extends CoreAccess {
  /** The session id (for logs and views). */
  readonly id: string;
  /** The session's stack (read for its configuration; entered only through `withCore`). */
  readonly stack: Stack;
}

/**
 * The gateway's door into one session's core.
 *
 * @example
 * ```ts
 * const core = new EgressCore(session);
 * core.enter((egress, now) => egress.sendUdp(from, 53, guest, port, reply, now));
 * ```
 */
export class EgressCore {
  /** The session. */
  readonly host: EgressHost;
  /** The largest UDP payload the session's link carries (MTU − 28). */
  readonly maxUdpPayload: number;
  #closed = false;

  /** Wraps a session whose stack has egress on; TypeError otherwise. */
  constructor(host: EgressHost) {
    if (!host.stack.egress) {
      throw new TypeError(`session ${host.id} was created without egress`);
    }
    this.host = host;
    this.maxUdpPayload = host.stack.config.mtu - IPV4_HEADER_LEN - UDP_HEADER_LEN;
  }

  /** Whether {@linkcode EgressCore.close} ran: entries are ignored from then on. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Runs `fn` under the session's core lock with the stack's egress; undefined once closed. */
  enter<T>(fn: (egress: StackEgress, now: number, stack: Stack) => T): T | undefined {
    if (this.#closed) return undefined;
    return this.host.withCore((stack, now) => fn(stack.egress!, now, stack));
  }

  /** The largest UDP payload the session's link carries to or from `addr`'s family (MTU − 28, or − 48 over IPv6). */
  maxUdpPayloadFor(addr: IpAddress): number {
    return this.host.stack.config.mtu - ipHeaderLen(addr) - UDP_HEADER_LEN;
  }

  /** Gives back a quota charge an event handed over. */
  release(charge: number): void {
    if (charge > 0) this.host.stack.quota.memory.release(charge);
  }

  /** Stops entering the core. */
  close(): void {
    this.#closed = true;
  }
}
