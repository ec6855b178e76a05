/**
 * `NETISLE_DNS_UPSTREAM=https://…`: DNS over HTTPS (RFC 8484) with `fetch`,
 * the one upstream every runtime has (the only one on Cloudflare Workers).
 * Each question is a POST of a query message (`application/dns-message`, id
 * 0 as §4.1 recommends) built by the gateway, never the guest's bytes.
 *
 * @module
 */

import type { DnsQuestion } from "../../../wire/mod.ts";
import { buildDnsMessage, DnsRecordType, parseDnsMessage } from "./dns_message.ts";
import {
  answerSetOf,
  type DnsAnswerSet,
  type DnsResolveOptions,
  type DnsUpstream,
} from "./dns_upstream.ts";

/** The media type of RFC 8484 §6. */
export const DNS_MESSAGE_TYPE = "application/dns-message";
/** The largest response read (a DNS message is at most 65535 bytes). */
const MAX_RESPONSE = 65535;

/**
 * A query message for `question`: RD set, an EDNS(0) OPT record advertising
 * `udpSize` (RFC 6891 §6) when given.
 *
 * @example
 * ```ts
 * const q = dnsQueryMessage(0, { name: "example.com", type: 1, class: 1 }, 1232);
 * ```
 */
export function dnsQueryMessage(id: number, question: DnsQuestion, udpSize?: number): Uint8Array {
  return buildDnsMessage({
    id,
    response: false,
    rd: true,
    question,
    additional: udpSize === undefined
      ? []
      : [{ name: "", type: DnsRecordType.OPT, class: udpSize, ttl: 0, data: new Uint8Array(0) }],
  });
}

/**
 * A DNS-over-HTTPS upstream.
 *
 * @example
 * ```ts
 * const upstream = new DohUpstream("https://cloudflare-dns.com/dns-query");
 * ```
 */
export class DohUpstream implements DnsUpstream {
  readonly description: string;
  #url: string;
  #fetch: typeof fetch;

  /** Creates the upstream; `fetchFn` is `fetch` unless a test gives another. */
  constructor(url: string, fetchFn: typeof fetch = (i, init) => fetch(i, init)) {
    this.#url = url;
    this.description = url;
    this.#fetch = fetchFn;
  }

  /** POSTs the question and parses the response. */
  async resolve(question: DnsQuestion, options: DnsResolveOptions): Promise<DnsAnswerSet> {
    const body = dnsQueryMessage(0, question, 4096);
    const res = await this.#fetch(this.#url, {
      method: "POST",
      headers: { "content-type": DNS_MESSAGE_TYPE, accept: DNS_MESSAGE_TYPE },
      body: body as Uint8Array<ArrayBuffer>,
      signal: options.signal,
    });
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`DNS-over-HTTPS ${this.#url} answered HTTP ${res.status}`);
    }
    const bytes = await readLimited(res, MAX_RESPONSE);
    const { truncated: _t, ...set } = answerSetOf(parseDnsMessage(bytes), question, 0);
    return set;
  }
}

async function readLimited(res: Response, max: number): Promise<Uint8Array> {
  const reader = res.body?.getReader();
  if (!reader) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      await reader.cancel();
      throw new Error(`DNS-over-HTTPS response over ${max} bytes`);
    }
    parts.push(value);
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
