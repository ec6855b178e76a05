/**
 * Counter totals over sessions, for /metrics. Prometheus counters must never
 * go down, so the registry folds the counters of every session it deletes
 * into a "retired" total; live sessions are added on top when metrics are read.
 *
 * @module
 */

import type { Session } from "./session.ts";

/** Counters of one or many sessions, summed. */
export interface SessionTotals {
  /** Frames received from tunnels, including those dropped because the input queue was full. */
  rxFrames: number;
  /** Bytes in the frames the stacks were given. */
  rxBytes: number;
  /** Frames the stacks emitted. */
  txFrames: number;
  /** Bytes in the frames the stacks emitted. */
  txBytes: number;
  /** Received frames dropped, by reason (stack reasons plus `input_queue_full`). */
  rxDrops: Record<string, number>;
  /** Frames built but not sent, by reason (stack reasons plus `no_tunnel`). */
  txDrops: Record<string, number>;
  /** Tunnel attachments, reconnects included. */
  tunnelAttaches: number;
  /** Tunnel messages refused before reaching a stack. */
  tunnelRejectedMessages: number;
  /** Frames a tunnel dropped because its far side read too slowly. */
  tunnelBackpressureDrops: number;
  /** Core-lock critical sections run. */
  coreLockAcquisitions: number;
  /** Milliseconds spent inside core-lock critical sections. */
  coreLockHeldMs: number;
  /** Attempts to enter a core from inside it (each one threw). */
  coreLockReentries: number;
  /** Frames queued to capture subscribers. */
  captureFrames: number;
  /** Frames capture subscribers dropped: their client read too slowly, or the memory quota refused. */
  captureDropped: number;
  /** Fragmented IPv4 datagrams by outcome (RFC 791 §3.2 reassembly). */
  reassembly: { completed: number; timedOut: number; discarded: number };
  /** Fragmented IPv6 packets by outcome (RFC 8200 §4.5 reassembly). */
  reassembly6: { completed: number; timedOut: number; discarded: number };
}

/**
 * All-zero totals.
 *
 * @example
 * ```ts
 * const t = emptySessionTotals();
 * t.rxFrames; // 0
 * ```
 */
export function emptySessionTotals(): SessionTotals {
  return {
    rxFrames: 0,
    rxBytes: 0,
    txFrames: 0,
    txBytes: 0,
    rxDrops: {},
    txDrops: {},
    tunnelAttaches: 0,
    tunnelRejectedMessages: 0,
    tunnelBackpressureDrops: 0,
    coreLockAcquisitions: 0,
    coreLockHeldMs: 0,
    coreLockReentries: 0,
    captureFrames: 0,
    captureDropped: 0,
    reassembly: { completed: 0, timedOut: 0, discarded: 0 },
    reassembly6: { completed: 0, timedOut: 0, discarded: 0 },
  };
}

function addReasons(into: Record<string, number>, from: Record<string, number>): void {
  for (const k in from) into[k] = (into[k] ?? 0) + from[k];
}

/**
 * Adds `session`'s counters to `into` and returns `into`. Reads plain fields
 * only: no allocation per frame, no core lock (reading is synchronous, so no
 * critical section can be half done).
 *
 * @example
 * ```ts
 * const totals = emptySessionTotals();
 * for (const s of registry.list()) addSessionTotals(totals, s);
 * ```
 */
export function addSessionTotals(into: SessionTotals, session: Session): SessionTotals {
  const c = session.stack.counters;
  const t = session.tunnelStats;
  into.rxFrames += c.rxFrames + t.inputQueueDrops;
  into.rxBytes += c.rxBytes;
  into.txFrames += c.txFrames;
  into.txBytes += c.txBytes;
  addReasons(into.rxDrops, c.drops);
  into.rxDrops.input_queue_full = (into.rxDrops.input_queue_full ?? 0) + t.inputQueueDrops;
  addReasons(into.txDrops, c.txDrops);
  into.txDrops.no_tunnel = (into.txDrops.no_tunnel ?? 0) + t.framesWithoutTunnel;
  into.tunnelAttaches += t.attaches;
  into.tunnelRejectedMessages += t.rejectedMessages;
  into.tunnelBackpressureDrops += t.backpressureDrops;
  const l = session.lock.stats;
  into.coreLockAcquisitions += l.acquisitions;
  into.coreLockHeldMs += l.heldMs;
  into.coreLockReentries += l.reentries;
  into.captureFrames += session.capture.captured;
  into.captureDropped += session.capture.dropped;
  const r = session.stack.reassembler.stats;
  into.reassembly.completed += r.completed;
  into.reassembly.timedOut += r.timedOut;
  into.reassembly.discarded += r.discarded;
  const r6 = session.stack.ipv6Reassembler?.stats;
  if (r6) {
    into.reassembly6.completed += r6.completed;
    into.reassembly6.timedOut += r6.timedOut;
    into.reassembly6.discarded += r6.discarded;
  }
  return into;
}

/**
 * A deep copy of `totals` (so live sessions can be added without touching the original).
 *
 * @example
 * ```ts
 * const now = copySessionTotals(registry.retired);
 * ```
 */
export function copySessionTotals(totals: SessionTotals): SessionTotals {
  return {
    ...totals,
    rxDrops: { ...totals.rxDrops },
    txDrops: { ...totals.txDrops },
    reassembly: { ...totals.reassembly },
    reassembly6: { ...totals.reassembly6 },
  };
}
