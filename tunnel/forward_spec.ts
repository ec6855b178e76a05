/**
 * The port-forward specifications of `netisle forward`, in ssh's syntax
 * (`-L [BIND:]PORT:HOST:PORT`, `-R PORT:HOST:PORT`) with a `/udp` suffix for
 * datagrams (as chisel writes it) and `-U` for a local UDP forward.
 *
 * @module
 */

import { joinHostPort } from "../src/client/mod.ts";

/** One forward. */
export interface ForwardSpec {
  /** `local`: a listener here, connections into the session; `remote`: the other way. */
  kind: "local" | "remote";
  /** The transport. */
  protocol: "tcp" | "udp";
  /** Where the listener binds: a local address (`local`), the stack's (`remote`, usually absent). */
  bindAddress: string | undefined;
  /** The listener's port (0: any free one, for `local`). */
  bindPort: number;
  /** Where connections go: an address in the session (`local`), a host here (`remote`). */
  host: string;
  /** The destination port. */
  port: number;
  /** The spec as given, for messages. */
  text: string;
}

function port(text: string, what: string, spec: string, min = 1): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= 65535)) {
    throw new RangeError(`${what} "${text}" in "${spec}" is not a port (${min}..65535)`);
  }
  return n;
}

/**
 * Parses one spec of `-L` (`kind` local) or `-R` (remote). IPv6 addresses go
 * in brackets (`[::1]:8080:10.0.2.15:80`); `*` binds every local address.
 *
 * @example
 * ```ts
 * parseForwardSpec("local", "8080:10.0.2.15:80");
 * // { kind: "local", protocol: "tcp", bindAddress: undefined, bindPort: 8080,
 * //   host: "10.0.2.15", port: 80, text: "8080:10.0.2.15:80" }
 * parseForwardSpec("remote", "5353:127.0.0.1:53/udp").protocol; // "udp"
 * ```
 */
export function parseForwardSpec(
  kind: "local" | "remote",
  text: string,
  protocol: "tcp" | "udp" = "tcp",
): ForwardSpec {
  let body = text.trim();
  const suffix = /\/(tcp|udp)$/i.exec(body);
  if (suffix) {
    protocol = suffix[1].toLowerCase() as "tcp" | "udp";
    body = body.slice(0, -suffix[0].length);
  }
  // Split on colons outside brackets.
  const parts: string[] = [];
  let cur = "";
  let depth = 0;
  for (const ch of body) {
    if (ch === "[") depth++;
    if (ch === "]") depth--;
    if (ch === ":" && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  const strip = (h: string) => h.replace(/^\[(.*)\]$/, "$1");
  const shape = kind === "local" ? "[BIND:]PORT:HOST:PORT" : "[BIND:]PORT:HOST:PORT";
  if (parts.length !== 3 && parts.length !== 4) {
    throw new RangeError(`"${text}" is not ${shape}`);
  }
  const [bind, p1, host, p2] = parts.length === 4 ? parts : [undefined, ...parts];
  if (!host) throw new RangeError(`"${text}" names no destination host`);
  const bindAddress = bind === undefined || bind === ""
    ? undefined
    : bind === "*"
    ? "0.0.0.0"
    : strip(bind);
  return {
    kind,
    protocol,
    bindAddress,
    bindPort: port(p1 ?? "", "listening port", text, kind === "local" ? 0 : 1),
    host: strip(host),
    port: port(p2 ?? "", "destination port", text),
    text,
  };
}

/**
 * A short label of a forward: `-L 127.0.0.1:8080 -> 10.0.2.15:80`.
 *
 * @example
 * ```ts
 * forwardLabel(parseForwardSpec("local", "8080:10.0.2.15:80")); // "-L 127.0.0.1:8080 -> 10.0.2.15:80"
 * ```
 */
export function forwardLabel(s: ForwardSpec, boundPort = s.bindPort): string {
  const flag = s.kind === "local" ? (s.protocol === "udp" ? "-U" : "-L") : "-R";
  const udp = s.protocol === "udp" && s.kind === "remote" ? "/udp" : "";
  const bind = joinHostPort(
    s.bindAddress ?? (s.kind === "local" ? "127.0.0.1" : "10.0.2.2"),
    boundPort,
  );
  return `${flag} ${bind} -> ${joinHostPort(s.host, s.port)}${udp}`;
}
