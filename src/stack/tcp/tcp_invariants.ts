/**
 * The bookkeeping invariants of a TCP layer, for tests and the frame fuzzer
 * (never the data path: it costs O(connections)).
 *
 * @module
 */

import type { TcpLayer } from "./tcp_layer.ts";
import { tupleKey } from "./tcp_layer.ts";
import { egressKey } from "./tcp_egress.ts";

/**
 * Checks the bookkeeping of `layer` and returns every violation found (empty
 * when all hold). `portUse` is the layer's reference count per local port.
 * Checked:
 * - each connection is on exactly one list and the list matches its state
 *   (active: neither TIME_WAIT nor CLOSED; time-wait: TIME_WAIT), under the
 *   demux key of its own 4-tuple;
 * - connections ≤ `limits.maxConnections`; each listener is registered
 *   under its port, open, with SYN and accept queues ≤ its backlog holding
 *   only live connections of that listener (SYN queue: SYN_RECEIVED);
 * - port reference counts equal bound reservations + listeners +
 *   connections on the stack's address per local port (egress connections
 *   use ports of outside addresses);
 * - per connection: send queue ≤ `sendBufferMaxBytes`, receive queue and
 *   out-of-order bytes ≤ `recvBufferMaxBytes` + 2^14 (window-scale rounding);
 * - timers: every connection with a running timer is in the layer's timer
 *   queue no later than its earliest deadline, and the queue holds no more
 *   entries than there are connections;
 * - quotas: the storage the listed connections are charged for is within
 *   what the session's memory quota counts, and the units they hold within
 *   what its socket quota counts (others hold some too).
 *
 * @example
 * ```ts
 * const bad = stack.tcp.checkInvariants(); // calls this
 * if (bad.length > 0) throw new Error(bad.join("\n"));
 * ```
 */
export function checkTcpInvariants(
  layer: TcpLayer,
  portUse: ReadonlyMap<number, number>,
): string[] {
  const bad: string[] = [];
  const uses = new Map<number, number>();
  const use = (p: number) => uses.set(p, (uses.get(p) ?? 0) + 1);
  let charged = 0;
  let units = 0;
  for (const [list, name] of [[layer.active, "active"], [layer.timeWait, "time-wait"]] as const) {
    for (const [key, c] of list) {
      const where = `${name} ${key} (${c.state})`;
      const own = layer.ownsAddress(c.localAddr);
      const tuple = own
        ? tupleKey(c.remoteAddr, c.remotePort, c.localPort, c.localAddr)
        : egressKey(c.remoteAddr, c.remotePort, c.localAddr, c.localPort);
      if (key !== c.key || key !== tuple) {
        bad.push(`${where}: demux key does not match the connection's 4-tuple ${c.key}`);
      }
      if (c.pcbList !== name) bad.push(`${where}: state belongs on the ${c.pcbList} list`);
      if (own) use(c.localPort); // egress connections use ports of outside addresses
      const deadline = c.nextDeadline();
      if (deadline !== undefined && !(c.timerQueueKey <= deadline)) {
        bad.push(`${where}: timer due at ${deadline} but queued at ${c.timerQueueKey}`);
      }
      charged += c.chargedBytes;
      if (c.holdsQuotaUnit) units++;
      const i = c.info();
      const recvMax = c.config.recvBufferMaxBytes + (1 << 14);
      if (i.sendQueued > c.config.sendBufferMaxBytes) {
        bad.push(`${where}: send queue ${i.sendQueued} > ${c.config.sendBufferMaxBytes}`);
      }
      if (i.recvQueued > recvMax) {
        bad.push(`${where}: receive queue ${i.recvQueued} > ${recvMax}`);
      }
      if (i.outOfOrderBytes > recvMax) {
        bad.push(`${where}: out-of-order bytes ${i.outOfOrderBytes} > ${recvMax}`);
      }
    }
  }
  const { memory, sockets } = layer.quota;
  if (charged > memory.used) {
    bad.push(`connections are charged ${charged} bytes, the memory quota counts ${memory.used}`);
  }
  if (units > sockets.used) {
    bad.push(`connections hold ${units} socket units, the socket quota counts ${sockets.used}`);
  }
  for (const key of layer.timeWait.keys()) {
    if (layer.active.has(key)) bad.push(`${key} is on both the active and time-wait lists`);
  }
  if (layer.timerQueue.size > layer.connectionCount) {
    bad.push(`timer queue holds ${layer.timerQueue.size} > ${layer.connectionCount} connections`);
  }
  if (layer.connectionCount > layer.limits.maxConnections) {
    bad.push(`${layer.connectionCount} connections > limit ${layer.limits.maxConnections}`);
  }
  for (const [port, l] of layer.listeners) {
    use(port);
    if (l.port !== port || l.closed) bad.push(`listener under port ${port} is ${l.port}/closed`);
    if (l.synQueue.size > l.backlog || l.acceptQueue.length > l.backlog) {
      bad.push(
        `listener ${port}: queues ${l.synQueue.size}/${l.acceptQueue.length} > ${l.backlog}`,
      );
    }
    for (const c of l.synQueue) {
      if (c.state !== "SYN_RECEIVED" || c.listener !== l || layer.active.get(c.key) !== c) {
        bad.push(`listener ${port}: SYN queue holds ${c.key} in ${c.state}`);
      }
    }
    for (const c of l.acceptQueue) {
      const listed = layer.active.get(c.key) === c || layer.timeWait.get(c.key) === c;
      if (c.listener !== l || !listed) {
        bad.push(`listener ${port}: accept queue holds ${c.key} in ${c.state}, not listed`);
      }
    }
  }
  for (const [port, n] of layer.bound) for (let k = 0; k < n; k++) use(port);
  for (const port of new Set([...uses.keys(), ...portUse.keys()])) {
    if ((uses.get(port) ?? 0) !== (portUse.get(port) ?? 0)) {
      bad.push(
        `port ${port}: use count ${portUse.get(port) ?? 0} but ${uses.get(port) ?? 0} holders`,
      );
    }
  }
  return bad;
}
