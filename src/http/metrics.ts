/**
 * `GET /metrics` in the Prometheus text exposition format (version 0.0.4).
 *
 * Cheap by construction: rendering reads counters the sessions keep anyway
 * (one pass over the live sessions, no core lock, nothing per frame), and
 * every label has a bounded set of values: totals over sessions, never one
 * series per session.
 *
 * @module
 */

import { addSessionTotals, copySessionTotals, type SessionRegistry } from "../session/mod.ts";

/** Content type of the Prometheus text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A metric type of the text format. */
export type MetricType = "counter" | "gauge";

/** Label names and values of one sample. */
export type MetricLabels = Record<string, string>;

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Builds a text-format document one metric family at a time: `# HELP`, `# TYPE`, then samples.
 *
 * @example
 * ```ts
 * const w = new MetricsWriter();
 * w.family("netisle_sessions", "gauge", "Live sessions.").sample(3);
 * w.toString(); // "# HELP netisle_sessions Live sessions.\n# TYPE netisle_sessions gauge\nnetisle_sessions 3\n"
 * ```
 */
export class MetricsWriter {
  #lines: string[] = [];
  #names = new Set<string>();

  /**
   * Starts a family. Throws TypeError for an invalid or repeated name (a
   * family must appear once, with all its samples together).
   */
  family(name: string, type: MetricType, help: string): MetricFamilyWriter {
    if (!NAME.test(name)) {
      throw new TypeError(`metrics: invalid metric name ${JSON.stringify(name)}`);
    }
    if (this.#names.has(name)) throw new TypeError(`metrics: family "${name}" written twice`);
    this.#names.add(name);
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    return new MetricFamilyWriter(name, this.#lines);
  }

  /** The document, ending in a newline. */
  toString(): string {
    return this.#lines.length === 0 ? "" : this.#lines.join("\n") + "\n";
  }
}

/** Writes the samples of one family; made by {@linkcode MetricsWriter.family}. */
export class MetricFamilyWriter {
  /** The family's metric name. */
  readonly name: string;
  #lines: string[];

  /** Made by {@linkcode MetricsWriter.family}; appends sample lines to `lines`. */
  constructor(name: string, lines: string[]) {
    this.name = name;
    this.#lines = lines;
  }

  /** Adds a sample with optional labels; throws TypeError for an invalid label name. */
  sample(value: number, labels?: MetricLabels): this {
    let l = "";
    if (labels) {
      const parts: string[] = [];
      for (const k in labels) {
        if (!LABEL.test(k)) throw new TypeError(`metrics: invalid label name ${JSON.stringify(k)}`);
        parts.push(`${k}="${escapeLabelValue(labels[k])}"`);
      }
      if (parts.length > 0) l = `{${parts.join(",")}}`;
    }
    this.#lines.push(`${this.name}${l} ${formatValue(value)}`);
    return this;
  }
}

/** One series of {@linkcode HttpMetrics}. */
interface HttpSeries {
  method: string;
  route: string;
  status: number;
  n: number;
}

/** Methods counted under their own name; anything else is counted as `OTHER`. */
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/**
 * Requests served, by method, route pattern and status. Route patterns come
 * from the router (`/v1/sessions/:sid`), never raw paths, so the number of
 * series stays bounded.
 *
 * @example
 * ```ts
 * const http = new HttpMetrics();
 * http.record("GET", "/v1/sessions/:sid", 200);
 * ```
 */
export class HttpMetrics {
  /** Series by route, then by method and status (no key string made per request). */
  #byRoute = new Map<string, Map<string, Map<number, HttpSeries>>>();
  /** Every series, in first-seen order. */
  #series: HttpSeries[] = [];

  /** Counts one request. Unknown methods count as `OTHER`. */
  record(method: string, route: string, status: number): void {
    const m = KNOWN_METHODS.has(method) ? method : "OTHER";
    let byMethod = this.#byRoute.get(route);
    if (byMethod === undefined) this.#byRoute.set(route, byMethod = new Map());
    let byStatus = byMethod.get(m);
    if (byStatus === undefined) byMethod.set(m, byStatus = new Map());
    const e = byStatus.get(status);
    if (e !== undefined) {
      e.n++;
      return;
    }
    const created = { method: m, route, status, n: 1 };
    byStatus.set(status, created);
    this.#series.push(created);
  }

  /** Every series and its count, in first-seen order. */
  entries(): Array<{ method: string; route: string; status: number; count: number }> {
    return this.#series.map((e) => ({
      method: e.method,
      route: e.route,
      status: e.status,
      count: e.n,
    }));
  }
}

/** Adds families of a component to the document (sockets, UDP, ...). */
export type MetricsCollector = (w: MetricsWriter) => void;

/** What {@linkcode renderMetrics} reads. */
export interface MetricsSources {
  /** The sessions. */
  registry: SessionRegistry;
  /** HTTP request counters, when the app records them. */
  http?: HttpMetrics;
  /** Extra families, written after the built-in ones. */
  collectors?: readonly MetricsCollector[];
  /** Process memory; default `process.memoryUsage()` where it exists. Return undefined to omit. */
  memoryUsage?: () => Record<string, number> | undefined;
}

function defaultMemoryUsage(): Record<string, number> | undefined {
  try {
    const p = (globalThis as unknown as {
      process?: { memoryUsage?: () => Record<string, number> };
    })
      .process;
    return p?.memoryUsage?.();
  } catch {
    return undefined;
  }
}

const MEMORY_KINDS: Record<string, string> = {
  rss: "rss",
  heapTotal: "heap_total",
  heapUsed: "heap_used",
  external: "external",
  arrayBuffers: "array_buffers",
};

/**
 * Renders every netisle metric as a Prometheus text document.
 *
 * @example
 * ```ts
 * const text = renderMetrics({ registry, http: new HttpMetrics() });
 * // # HELP netisle_sessions Sessions alive now.
 * // # TYPE netisle_sessions gauge
 * // netisle_sessions 1
 * // ...
 * ```
 */
export function renderMetrics(sources: MetricsSources): string {
  const { registry } = sources;
  const sessions = registry.list();
  const totals = copySessionTotals(registry.retired);
  let tunnels = 0;
  let maxHeldMs = 0;
  let maxTimerLateMs = 0;
  let captures = 0;
  const pcbs = { active: 0, "time-wait": 0, listen: 0, bound: 0 };
  const sockets = { tcp: 0, udp: 0 };
  let udpEndpoints = 0;
  for (const s of sessions) {
    for (const e of s.sockets.entries()) sockets[e.protocol]++;
    const p = s.sockets.pcbCounts();
    udpEndpoints += p.udp;
    addSessionTotals(totals, s);
    if (s.tunnelAttached) tunnels++;
    if (s.lock.stats.maxHeldMs > maxHeldMs) maxHeldMs = s.lock.stats.maxHeldMs;
    const late = s.coreDelay.timers.summary().maxMs;
    if (late > maxTimerLateMs) maxTimerLateMs = late;
    captures += s.capture.size;
    pcbs.active += p.active;
    pcbs["time-wait"] += p.timeWait;
    pcbs.listen += p.listen;
    pcbs.bound += p.bound;
  }

  const w = new MetricsWriter();
  w.family("netisle_sessions", "gauge", "Sessions alive now.").sample(sessions.length);
  w.family("netisle_sessions_created_total", "counter", "Sessions created since start.")
    .sample(registry.created);
  w.family("netisle_sessions_expired_total", "counter", "Sessions deleted by idle expiry.")
    .sample(registry.expired);
  w.family("netisle_tunnels_attached", "gauge", "Sessions with a tunnel attached now.")
    .sample(tunnels);
  w.family("netisle_tunnel_attaches_total", "counter", "Tunnel attachments, reconnects included.")
    .sample(totals.tunnelAttaches);
  w.family(
    "netisle_tunnel_rejected_messages_total",
    "counter",
    "Tunnel messages refused before reaching a stack (oversized, runt, not binary).",
  ).sample(totals.tunnelRejectedMessages);
  w.family(
    "netisle_tunnel_backpressure_drops_total",
    "counter",
    "Frames a tunnel dropped because its far side read too slowly.",
  ).sample(totals.tunnelBackpressureDrops);

  w.family(
    "netisle_frames_total",
    "counter",
    "Frames summed over sessions; direction rx = tunnel to stack, tx = stack to tunnel.",
  ).sample(totals.rxFrames, { direction: "rx" }).sample(totals.txFrames, { direction: "tx" });
  w.family("netisle_frame_bytes_total", "counter", "Bytes in those frames, by direction.")
    .sample(totals.rxBytes, { direction: "rx" }).sample(totals.txBytes, { direction: "tx" });
  const drops = w.family(
    "netisle_frame_drops_total",
    "counter",
    "Frames dropped, summed over sessions, by direction and reason.",
  );
  for (const reason of Object.keys(totals.rxDrops).sort()) {
    drops.sample(totals.rxDrops[reason], { direction: "rx", reason });
  }
  for (const reason of Object.keys(totals.txDrops).sort()) {
    drops.sample(totals.txDrops[reason], { direction: "tx", reason });
  }

  w.family(
    "netisle_ipv4_reassembly_total",
    "counter",
    "Fragmented IPv4 datagrams summed over sessions, by outcome " +
      "(completed; timed_out before all fragments came; discarded over a memory or count limit).",
  ).sample(totals.reassembly.completed, { outcome: "completed" })
    .sample(totals.reassembly.timedOut, { outcome: "timed_out" })
    .sample(totals.reassembly.discarded, { outcome: "discarded" });
  w.family(
    "netisle_ipv6_reassembly_total",
    "counter",
    "Fragmented IPv6 packets summed over sessions, by outcome (as netisle_ipv4_reassembly_total).",
  ).sample(totals.reassembly6.completed, { outcome: "completed" })
    .sample(totals.reassembly6.timedOut, { outcome: "timed_out" })
    .sample(totals.reassembly6.discarded, { outcome: "discarded" });

  const tcp = w.family(
    "netisle_tcp_pcbs",
    "gauge",
    "TCP control blocks summed over sessions, by the list they are on.",
  );
  for (const list of ["active", "time-wait", "listen", "bound"] as const) {
    tcp.sample(pcbs[list], { list });
  }

  const socketFamily = w.family(
    "netisle_sockets",
    "gauge",
    "Sockets of the HTTP API summed over sessions, by protocol.",
  );
  socketFamily.sample(sockets.tcp, { protocol: "tcp" });
  socketFamily.sample(sockets.udp, { protocol: "udp" });
  w.family("netisle_udp_endpoints", "gauge", "Bound UDP endpoints summed over sessions.")
    .sample(udpEndpoints);

  w.family("netisle_core_lock_acquisitions_total", "counter", "Core-lock critical sections run.")
    .sample(totals.coreLockAcquisitions);
  w.family(
    "netisle_core_lock_held_seconds_total",
    "counter",
    "Time spent inside core-lock critical sections.",
  ).sample(totals.coreLockHeldMs / 1000);
  w.family(
    "netisle_core_lock_max_held_seconds",
    "gauge",
    "The longest critical section of any live session.",
  ).sample(maxHeldMs / 1000);
  w.family(
    "netisle_core_timer_max_lateness_seconds",
    "gauge",
    "How late any live session's timer fired after its deadline, at most (event-loop delay).",
  ).sample(maxTimerLateMs / 1000);
  w.family(
    "netisle_core_lock_reentries_total",
    "counter",
    "Attempts to enter a core from inside it (each one is a bug and threw).",
  ).sample(totals.coreLockReentries);

  w.family("netisle_pcap_captures", "gauge", "Packet captures streaming now.").sample(captures);
  w.family("netisle_pcap_frames_total", "counter", "Frames queued to packet captures.")
    .sample(totals.captureFrames);
  w.family(
    "netisle_pcap_dropped_frames_total",
    "counter",
    "Frames packet captures dropped because their client read too slowly.",
  ).sample(totals.captureDropped);

  if (sources.http) {
    const f = w.family(
      "netisle_http_requests_total",
      "counter",
      "HTTP requests by method, route pattern and status.",
    );
    for (const e of sources.http.entries()) {
      f.sample(e.count, { method: e.method, route: e.route, status: String(e.status) });
    }
  }

  const mem = (sources.memoryUsage ?? defaultMemoryUsage)();
  if (mem) {
    const f = w.family("netisle_process_memory_bytes", "gauge", "Process memory by kind.");
    for (const k in MEMORY_KINDS) {
      if (typeof mem[k] === "number") f.sample(mem[k], { kind: MEMORY_KINDS[k] });
    }
  }

  for (const collect of sources.collectors ?? []) collect(w);
  return w.toString();
}
