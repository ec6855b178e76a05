/**
 * TCP to addresses outside the session (egress), the core's part: a SYN
 * from the session's machine to an outside address is held, unanswered,
 * while the egress gateway dials the destination through the runtime; the
 * gateway's answer comes back as a core entry of the TCP layer: accept (the
 * held SYN becomes a connection in SYN-RECEIVED and the SYN-ACK goes out
 * from the outside address), refuse (a RST), or drop (the gateway answers
 * with ICMP). This is how gvisor-tap-vsock and libslirp terminate TCP: the
 * guest sees the handshake complete only once the outbound connection did.
 *
 * The held SYNs of a stack are bounded; one more is refused with a RST at
 * once (`tcp_egress_held_full`). A retransmitted SYN for a held one is taken
 * without an answer; a RST from the guest gives it up.
 *
 * @module
 */

import type { IpAddress, TcpRepr } from "../../wire/mod.ts";

/** A SYN held for the gateway. */
export interface HeldSyn {
  /** The demux key of the connection it would open. */
  readonly key: string;
  /** The guest's address and port (the connection's remote end); both addresses of one family. */
  readonly guest: IpAddress;
  readonly guestPort: number;
  /** The outside destination (the connection's local end). */
  readonly outside: IpAddress;
  readonly outsidePort: number;
  /** The SYN: its sequence number and options (text, if any, is not kept). */
  readonly syn: TcpRepr;
  /** When it arrived. */
  readonly at: number;
}

/** Where the TCP layer reports held SYNs (the stack's egress). */
export interface TcpEgressHook {
  /**
   * A SYN to an outside address is held; false when it cannot be reported
   * (the layer then refuses it with a RST at once).
   */
  synHeld(held: HeldSyn, now: number): boolean;
  /** The guest gave a held SYN up (it sent a RST). */
  synCancelled(held: HeldSyn, now: number): void;
}

/** Reasons egress TCP drops segments (pre-registered as counters). */
export const TCP_EGRESS_DROP_REASONS: readonly string[] = [
  "tcp_egress_held_full",
  "tcp_egress_syn_pending",
  "tcp_egress_no_connection",
];

/**
 * The demux key of an egress connection: the guest's 2-tuple and the
 * outside address and port (a guest may use one port towards several
 * destinations). An IPv4 key starts with a digit (the guest's address as a
 * number) and holds an `@`; an IPv6 key starts with `[` and is the form
 * `tupleKey` gives IPv6 connections (both addresses, 8 code units each,
 * then the ports), which already names the local address: the outside
 * address is never one of the stack's, so it cannot meet a connection of
 * the stack's own, and no IPv6 key equals an IPv4 one.
 *
 * @example
 * ```ts
 * egressKey(guest, 40000, outside, 80); // "…:40000:80@…" (IPv4), "[……:40000:80" (IPv6)
 * ```
 */
export function egressKey(
  guest: IpAddress,
  guestPort: number,
  outside: IpAddress,
  outsidePort: number,
): string {
  return typeof guest === "string"
    ? `[${guest}${outside}:${guestPort}:${outsidePort}`
    : `${guest}:${guestPort}:${outsidePort}@${outside}`;
}

/**
 * The held SYNs of one stack, at most `max`.
 *
 * @example
 * ```ts
 * const held = new HeldSyns(64);
 * held.add({ key, guest, guestPort, outside, outsidePort, syn, at: now });
 * ```
 */
export class HeldSyns {
  /** The most held at once. */
  readonly max: number;
  #map = new Map<string, HeldSyn>();

  /** Creates an empty table; RangeError unless `max` is a positive integer. */
  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`HeldSyns: max must be a positive integer, got ${max}`);
    }
    this.max = max;
  }

  /** SYNs held now. */
  get size(): number {
    return this.#map.size;
  }

  /** Whether one more fits. */
  get full(): boolean {
    return this.#map.size >= this.max;
  }

  /** The held SYN under `key`. */
  get(key: string): HeldSyn | undefined {
    return this.#map.get(key);
  }

  /** Holds `h` (the caller checked {@linkcode HeldSyns.full}). */
  add(h: HeldSyn): void {
    this.#map.set(h.key, h);
  }

  /** Removes and returns the held SYN under `key`. */
  take(key: string): HeldSyn | undefined {
    const h = this.#map.get(key);
    if (h) this.#map.delete(key);
    return h;
  }

  /** Every held SYN (a copy). */
  values(): HeldSyn[] {
    return [...this.#map.values()];
  }

  /** Forgets every held SYN. */
  clear(): void {
    this.#map.clear();
  }
}
