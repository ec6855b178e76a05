/**
 * Admission of TCP connections by the adapters that own their accept loop
 * (`serve_deno.ts`): a cap on open connections in total and per client
 * address, decided at accept time, before a byte is read. A refused
 * connection is closed at once; nothing else happens for it. Also the
 * rate-limited log line the accept loops print for refusals and accept
 * errors, so that a flood cannot flood the log too.
 *
 * Runtime-neutral; time is passed in (`now`).
 *
 * @module
 */

/** Limits of a {@linkcode ConnectionGate}. */
export interface ConnectionLimits {
  /** Open connections at most, in total. */
  maxConnections: number;
  /** Open connections at most from one address (IPv6: one /64). 0: no per-address cap. */
  maxConnectionsPerAddress: number;
}

/** Why a connection was refused. */
export type Refusal = "total" | "per-address";

/**
 * Counts open connections globally and per address.
 *
 * @example
 * ```ts
 * const gate = new ConnectionGate({ maxConnections: 1000, maxConnectionsPerAddress: 64 });
 * const ticket = gate.admit("192.0.2.7");
 * if (typeof ticket === "string") conn.close(); // refused: "total" or "per-address"
 * else conn.onClose(ticket);                     // release exactly once
 * ```
 */
export class ConnectionGate {
  readonly limits: ConnectionLimits;
  #open = 0;
  #byAddress = new Map<string, number>();
  /** Connections refused, by reason. */
  readonly refused = { total: 0, "per-address": 0 };

  /** A gate with `limits` (both must be >= 1; the per-address cap may be 0 = none). */
  constructor(limits: ConnectionLimits) {
    if (!Number.isInteger(limits.maxConnections) || limits.maxConnections < 1) {
      throw new RangeError(`maxConnections must be an integer >= 1, got ${limits.maxConnections}`);
    }
    if (!Number.isInteger(limits.maxConnectionsPerAddress) || limits.maxConnectionsPerAddress < 0) {
      throw new RangeError(
        `maxConnectionsPerAddress must be an integer >= 0, got ${limits.maxConnectionsPerAddress}`,
      );
    }
    this.limits = limits;
  }

  /** Connections admitted and not yet released. */
  get open(): number {
    return this.#open;
  }

  /** Open connections from `address`'s group. */
  openFrom(address: string): number {
    return this.#byAddress.get(addressGroup(address)) ?? 0;
  }

  /**
   * Admits a connection from `address`: returns its release function (call
   * it once when the connection closes; later calls do nothing), or why it is
   * refused.
   */
  admit(address: string): (() => void) | Refusal {
    if (this.#open >= this.limits.maxConnections) {
      this.refused.total++;
      return "total";
    }
    const group = addressGroup(address);
    const perAddress = this.limits.maxConnectionsPerAddress;
    const current = this.#byAddress.get(group) ?? 0;
    if (perAddress > 0 && current >= perAddress) {
      this.refused["per-address"]++;
      return "per-address";
    }
    this.#open++;
    this.#byAddress.set(group, current + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#open--;
      const n = (this.#byAddress.get(group) ?? 1) - 1;
      if (n <= 0) this.#byAddress.delete(group);
      else this.#byAddress.set(group, n);
    };
  }
}

/**
 * The unit a per-address limit counts: an IPv4 address, or the /64 of an IPv6
 * address (one subscriber usually has a whole /64). IPv4-mapped IPv6
 * addresses count as their IPv4 address.
 *
 * @example
 * ```ts
 * addressGroup("2001:db8::1");        // "2001:db8:0:0::/64"
 * addressGroup("::ffff:192.0.2.7");   // "192.0.2.7"
 * ```
 */
export function addressGroup(address: string): string {
  const a = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
  if (!a.includes(":")) return a;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) return mapped[1];
  const zoneless = a.split("%")[0].toLowerCase();
  const [head, tail] = zoneless.includes("::") ? zoneless.split("::") : [zoneless, undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined
    ? left
    : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

/**
 * Prints a line at most once per interval per key, then how many were left
 * out: `netisle: accept failed: EMFILE (37 more in the last 5 s)`.
 *
 * @example
 * ```ts
 * const log = new RateLimitedLog(5000);
 * log.log("emfile", "accept failed: Too many open files", Date.now());
 * ```
 */
export class RateLimitedLog {
  #intervalMs: number;
  #print: (line: string) => void;
  #last = new Map<string, { at: number; suppressed: number }>();

  /** At most one line per key per `intervalMs`, printed with `print` (default console.error). */
  constructor(intervalMs: number, print: (line: string) => void = (l) => console.error(l)) {
    this.#intervalMs = intervalMs;
    this.#print = print;
  }

  /** Logs `message` under `key` unless one was printed less than an interval ago. */
  log(key: string, message: string, now: number): void {
    const entry = this.#last.get(key);
    if (entry && now - entry.at < this.#intervalMs) {
      entry.suppressed++;
      return;
    }
    const more = entry && entry.suppressed > 0
      ? ` (${entry.suppressed} more in the last ${Math.round((now - entry.at) / 1000)} s)`
      : "";
    this.#last.set(key, { at: now, suppressed: 0 });
    this.#print(`netisle: ${message}${more}`);
  }
}
