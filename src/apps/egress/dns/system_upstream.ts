/**
 * `NETISLE_DNS_UPSTREAM=system`: the runtime's own resolver (`Deno.resolveDns`
 * on Deno, `node:dns` on Bun), through a thin adapter
 * ({@linkcode SystemDnsLookup}: dns_system_deno.ts, dns_system_node.ts).
 * The runtime follows CNAME chains itself and reports the final records;
 * where it gives no TTL the answer carries {@linkcode SYSTEM_DNS_TTL}.
 * A name without records becomes NOERROR without answers (runtimes do not
 * tell "no such name" from "no such type" reliably); a type the runtime
 * cannot ask for gets NOTIMP.
 *
 * @module
 */

import { type DnsQuestion, DnsRcode } from "../../../wire/mod.ts";
import {
  type DnsRecord,
  type SystemDnsRecord,
  systemRecordToDns,
  systemRecordTypeName,
} from "./dns_message.ts";
import type { DnsAnswerSet, DnsResolveOptions, DnsUpstream } from "./dns_upstream.ts";

/** TTL of records the runtime reports without one (seconds). */
export const SYSTEM_DNS_TTL = 60;

/**
 * A runtime's resolver: the records of `type` for `name`. Rejects with
 * `notFound: true` when the name has none (or does not exist), any other
 * error when resolution failed.
 */
export interface SystemDnsLookup {
  /** Resolves; `signal` ends the lookup where the runtime allows. */
  lookup(
    name: string,
    type: SystemDnsRecord["type"],
    signal: AbortSignal,
  ): Promise<SystemDnsRecord[]>;
  /** Whether an error the lookup threw means "no records" rather than a failure. */
  isNotFound(err: unknown): boolean;
}

/**
 * The system resolver as an upstream.
 *
 * @example
 * ```ts
 * const upstream = new SystemDnsUpstream(denoSystemDnsLookup());
 * ```
 */
export class SystemDnsUpstream implements DnsUpstream {
  readonly description = "system";
  #lookup: SystemDnsLookup;

  /** Wraps a runtime adapter. */
  constructor(lookup: SystemDnsLookup) {
    this.#lookup = lookup;
  }

  /** Resolves one question with the runtime's resolver. */
  async resolve(question: DnsQuestion, options: DnsResolveOptions): Promise<DnsAnswerSet> {
    const type = systemRecordTypeName(question.type);
    if (type === undefined || question.class !== 1) {
      return { rcode: DnsRcode.NOTIMP, answers: [], authority: [] };
    }
    let found: SystemDnsRecord[];
    try {
      found = await this.#lookup.lookup(question.name, type, options.signal);
    } catch (err) {
      if (options.signal.aborted) throw options.signal.reason;
      if (this.#lookup.isNotFound(err)) {
        return { rcode: DnsRcode.NOERROR, answers: [], authority: [] };
      }
      throw err;
    }
    const answers: DnsRecord[] = [];
    for (const r of found) {
      if (r.type !== type) continue;
      const rec = systemRecordToDns(question.name, r, SYSTEM_DNS_TTL);
      if (rec) answers.push(rec);
    }
    return { rcode: DnsRcode.NOERROR, answers, authority: [] };
  }
}
