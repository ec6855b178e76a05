/**
 * `NETISLE_DNS_UPSTREAM=udp:IP:PORT`: a DNS server over UDP through the
 * runtime's own sockets (the egress dialer), RFC 1035 §4.2.1. Each question
 * gets a fresh socket (a new source port) and a random id, and only a
 * response from the server's address and port with that id and the same
 * question is taken (RFC 5452 §9.1); it is sent again once when no answer
 * comes within the retry interval. A truncated answer (TC) is asked again
 * over TCP (RFC 1035 §4.2.2, two-byte length prefix), as is every question
 * when the runtime has no outbound UDP.
 *
 * @module
 */

import type { DnsQuestion } from "../../../wire/mod.ts";
import type { DialedTcp, EgressDialer } from "../dialer.ts";
import { formatIpAddress, parseIpAddress } from "../ip_address.ts";
import { parseDnsMessage } from "./dns_message.ts";
import { dnsQueryMessage } from "./doh_upstream.ts";
import {
  answerSetOf,
  type DnsAnswerSet,
  type DnsResolveOptions,
  type DnsUpstream,
} from "./dns_upstream.ts";

/** Options of {@linkcode UdpDnsUpstream}. */
export interface UdpDnsUpstreamOptions {
  /** How long to wait for an answer before sending the query again (ms, default 1500). */
  retryMs?: number;
  /** Random bytes for query ids (default `crypto.getRandomValues`). */
  random?: (buf: Uint8Array) => void;
}

/**
 * A DNS server over UDP (and TCP for truncated answers).
 *
 * @example
 * ```ts
 * const upstream = new UdpDnsUpstream(dialer, "198.18.0.53", 53);
 * ```
 */
export class UdpDnsUpstream implements DnsUpstream {
  readonly description: string;
  #dialer: EgressDialer;
  #address: string;
  #port: number;
  #retryMs: number;
  #random: (buf: Uint8Array) => void;

  /** Creates the upstream; TypeError when `address` is not an IP address. */
  constructor(
    dialer: EgressDialer,
    address: string,
    port: number,
    options: UdpDnsUpstreamOptions = {},
  ) {
    const ip = parseIpAddress(address);
    if (!ip) throw new TypeError(`UdpDnsUpstream: "${address}" is not an IP address`);
    this.#dialer = dialer;
    this.#address = formatIpAddress(ip);
    this.#port = port;
    this.#retryMs = options.retryMs ?? 1500;
    this.#random = options.random ?? ((b) => crypto.getRandomValues(b));
    this.description = `udp:${ip.family === 6 ? `[${this.#address}]` : this.#address}:${port}`;
  }

  #id(): number {
    const b = new Uint8Array(2);
    this.#random(b);
    return (b[0] << 8) | b[1];
  }

  /** Asks over UDP, then over TCP when the answer was truncated. */
  async resolve(question: DnsQuestion, options: DnsResolveOptions): Promise<DnsAnswerSet> {
    if (this.#dialer.openUdp) {
      const id = this.#id();
      const bytes = await this.#askUdp(dnsQueryMessage(id, question, 1232), options);
      const set = answerSetOf(parseDnsMessage(bytes), question, id);
      if (!set.truncated) {
        return { rcode: set.rcode, answers: set.answers, authority: set.authority };
      }
    }
    const id = this.#id();
    const bytes = await this.#askTcp(dnsQueryMessage(id, question), options.signal);
    const { truncated: _t, ...set } = answerSetOf(parseDnsMessage(bytes), question, id);
    return set;
  }

  async #askUdp(query: Uint8Array, options: DnsResolveOptions): Promise<Uint8Array> {
    const { signal, clock } = options;
    signal.throwIfAborted();
    const id = (query[0] << 8) | query[1];
    let done!: (v: Uint8Array) => void;
    let failed!: (e: unknown) => void;
    const answer = new Promise<Uint8Array>((res, rej) => {
      done = res;
      failed = rej;
    });
    const sock = await this.#dialer.openUdp!({
      message: (data, address, port) => {
        const from = parseIpAddress(address);
        if (!from || formatIpAddress(from) !== this.#address || port !== this.#port) return;
        if (data.length < 12 || ((data[0] << 8) | data[1]) !== id) return;
        done(data);
      },
      error: (code) => failed(new Error(`DNS upstream ${this.description}: ${code}`)),
    });
    let timer: number | undefined;
    const onAbort = () => failed(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await sock.send(query, this.#address, this.#port);
      timer = clock.setTimer(clock.now() + this.#retryMs, () => {
        timer = undefined;
        sock.send(query, this.#address, this.#port).catch(failed);
      });
      return await answer;
    } finally {
      signal.removeEventListener("abort", onAbort);
      if (timer !== undefined) clock.clearTimer(timer);
      sock.close();
    }
  }

  async #askTcp(query: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    const conn = await this.#dialer.connectTcp(this.#address, this.#port, { signal });
    const onAbort = () => conn.close(true);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const framed = new Uint8Array(2 + query.length);
      framed[0] = query.length >>> 8;
      framed[1] = query.length & 0xff;
      framed.set(query, 2);
      await conn.write(framed);
      const head = await readExactly(conn, 2);
      return await readExactly(conn, (head[0] << 8) | head[1]);
    } finally {
      signal.removeEventListener("abort", onAbort);
      conn.close();
    }
  }
}

async function readExactly(conn: DialedTcp, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const chunk = await conn.read(n - got);
    if (chunk === null) throw new Error("DNS upstream closed the TCP connection mid-answer");
    out.set(chunk, got);
    got += chunk.length;
  }
  return out;
}
