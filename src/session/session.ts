/**
 * A session: one isolated stack, the core lock that serializes every entry
 * into it, the timer that drives it, and the tunnel attached to it.
 *
 * @module
 */

import {
  ChannelLink,
  createSessionQuota,
  type EventOwner,
  finishOffloadedFrames,
  Stack,
  type StackConfig,
  type StackCountersSnapshot,
} from "../stack/mod.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import { CoreLock } from "./core_lock.ts";
import { DelayHistogram } from "./delay_histogram.ts";
import { FrameCapture } from "./frame_capture.ts";
import { SocketTable } from "../socket/socket_table.ts";

/** The far side of a tunnel as the session sees it. Implementations must not throw. */
export interface TunnelEndpoint {
  /** A short description for logs and the session view (e.g. `websocket frame`). */
  readonly description: string;
  /**
   * What the tunnel takes beyond finished frames (`LinkOffload` bits: TCP
   * segments of up to 64 KiB and partial checksums, which the far end
   * finishes). 0 or absent: the session finishes such frames before `send`.
   */
  readonly offload?: number;
  /**
   * Sends frames emitted by the stack; called outside the core lock. With
   * `offload`, `offload[i]` is the `FrameOffload` metadata of `frames[i]`
   * (absent when every frame's is 0).
   */
  send(frames: Uint8Array[], offload?: number[]): void;
  /** Closes the tunnel because the session replaced or ended it. */
  close(code: number, reason: string): void;
}

/** Limits of one session. */
export interface SessionLimits {
  /** Received frames waiting for the core lock; more are dropped and counted. */
  inputQueueFrames: number;
  /** Emitted frames waiting for the tunnel; more are dropped and counted. */
  outputQueueFrames: number;
  /**
   * Socket units (`stack.quota.sockets`): the API's sockets plus connections
   * waiting in accept queues (EMFILE beyond).
   */
  maxSockets: number;
  /**
   * Bytes of storage the session makes the process hold (`stack.quota.memory`):
   * what its core queues, what the API holds for its sockets, its captures
   * (ENOBUFS, or dropped frames, beyond).
   */
  maxBufferedBytes: number;
}

/** Defaults for {@linkcode SessionLimits}. */
export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  inputQueueFrames: 4096,
  outputQueueFrames: 4096,
  maxSockets: 256,
  maxBufferedBytes: 32 * 1024 * 1024,
};

/** Everything needed to make a session. */
export interface SessionInit {
  id: string;
  token: string;
  stack: Omit<StackConfig, "arp"> & Partial<Pick<StackConfig, "arp">>;
  clock: Clock;
  limits?: Partial<SessionLimits>;
}

/** Tunnel statistics kept by the session. */
export interface TunnelStats {
  /** Times a tunnel was attached, reconnects included. */
  attaches: number;
  /** Frames dropped because no tunnel was attached when the stack emitted them. */
  framesWithoutTunnel: number;
  /** Received frames dropped because the input queue was full. */
  inputQueueDrops: number;
  /** Tunnel messages refused before reaching the stack (oversized, runt, not binary). */
  rejectedMessages: number;
  /** Frames the tunnel dropped because the far side was not reading fast enough. */
  backpressureDrops: number;
}

/** Close code sent to a tunnel that a newer tunnel for the same session replaced. */
export const CLOSE_REPLACED = 4000;
/** Close code sent to a tunnel whose session was deleted or expired. */
export const CLOSE_SESSION_ENDED = 4001;

/**
 * One session. Every entry into its stack goes through the core lock:
 * frames from the tunnel ({@linkcode Session.input}), timer ticks, and API
 * calls ({@linkcode Session.withCore}). Work that leaves the core (frames to
 * the tunnel, events to sockets) happens after the lock is released.
 *
 * @example
 * ```ts
 * const session = new Session({ id, token, clock: new SystemClock(), stack: { mac, ipv4, mtu: 1500 } });
 * session.attachTunnel(endpoint);
 * session.input([frame]);
 * ```
 */
export class Session {
  readonly id: string;
  readonly token: string;
  readonly createdAt: number;
  readonly stack: Stack;
  readonly lock: CoreLock;
  readonly limits: SessionLimits;
  /**
   * The capture tap: frames both ways, offered outside the core lock (GET
   * .../pcap); its queues are charged to the session's memory quota.
   */
  readonly capture: FrameCapture;
  /** The sockets the API opened in this session (closed with it). */
  readonly sockets: SocketTable;
  /**
   * Delays before the core ran queued work: `frames`, from a frame's arrival
   * ({@linkcode Session.input}) to the core processing it (the lock is
   * synchronous, so this is near zero unless input arrives while the core
   * runs); `timers`, how late the session's timer fired after its deadline
   * (event-loop delay, the wait that load does cause).
   */
  readonly coreDelay: { frames: DelayHistogram; timers: DelayHistogram } = {
    frames: new DelayHistogram(),
    timers: new DelayHistogram(),
  };
  readonly tunnelStats: TunnelStats = {
    attaches: 0,
    framesWithoutTunnel: 0,
    inputQueueDrops: 0,
    rejectedMessages: 0,
    backpressureDrops: 0,
  };
  /** Clock time of the last frame or API call, for idle expiry. */
  lastActivity: number;
  #clock: Clock;
  #link: ChannelLink;
  #input: Uint8Array[] = [];
  /** Arrival time of each queued frame (RTT is measured from arrival, not processing). */
  #inputAt: number[] = [];
  /** Offload metadata of each queued frame (`FrameOffload`, 0 for most). */
  #inputOffload: number[] = [];
  #tunnel: TunnelEndpoint | undefined;
  #tunnelSince: number | undefined;
  #timer: TimerHandle | undefined;
  #timerAt: number | undefined;
  #closed = false;
  #closeHooks: Array<() => void> = [];

  /** Creates a session; throws RangeError for an invalid stack configuration. */
  constructor(init: SessionInit) {
    this.id = init.id;
    this.token = init.token;
    this.#clock = init.clock;
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...init.limits };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new RangeError(`Session: limits.${k} must be a positive integer, got ${v}`);
      }
    }
    this.#link = new ChannelLink(this.limits.outputQueueFrames);
    this.stack = new Stack(init.stack, {
      link: this.#link,
      quota: createSessionQuota({
        maxBufferedBytes: this.limits.maxBufferedBytes,
        maxSockets: this.limits.maxSockets,
      }),
    });
    this.capture = new FrameCapture(undefined, undefined, this.stack.quota.memory);
    this.lock = new CoreLock(() => this.#clock.now(), () => this.#afterRelease());
    this.sockets = new SocketTable(this);
    this.createdAt = this.#clock.now();
    this.lastActivity = this.createdAt;
  }

  /** The session's clock: its core's time, its timers and the timeouts of its sockets' waits. */
  get clock(): Clock {
    return this.#clock;
  }

  /** Whether {@linkcode Session.close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether a tunnel is attached now. */
  get tunnelAttached(): boolean {
    return this.#tunnel !== undefined;
  }

  /** The clock time of the pending timer, if one is armed (for tests and metrics). */
  get timerDeadline(): number | undefined {
    return this.#timerAt;
  }

  /**
   * Hands received frames to the stack. When the lock is free they are
   * processed now, in one acquisition; otherwise they wait in the bounded input
   * queue for the current holder to pick up when it releases the lock.
   * `offload[i]`, when given, is what the tunnel says of `frames[i]`
   * (`FrameOffload`: a large TCP segment, a checksum it vouched for).
   * `borrowed`: the frames are valid during this call only (a lent
   * WebSocket message, whose buffer is reused once the call returns), so
   * those that must wait in the queue are copied; otherwise the queue keeps
   * the caller's frames as they are.
   */
  input(frames: Uint8Array[], offload?: readonly number[], borrowed = false): void {
    if (this.#closed) return;
    this.capture.offer(frames, "rx");
    const now = this.#clock.now();
    // A free lock processes the queue before this call returns; a held one leaves it to
    // the holder, after we returned.
    const copy = borrowed && this.lock.held;
    for (let i = 0; i < frames.length; i++) {
      if (this.#input.length >= this.limits.inputQueueFrames) {
        this.tunnelStats.inputQueueDrops++;
        continue;
      }
      this.#input.push(copy ? frames[i].slice() : frames[i]);
      this.#inputAt.push(now);
      this.#inputOffload.push(offload === undefined ? 0 : offload[i]);
    }
    if (!this.lock.held) this.lock.run(() => this.#drainInput());
  }

  /**
   * Runs `fn` inside the core lock with the stack and the current time. `fn`
   * must be synchronous; what it makes the stack emit is sent after release.
   * Throws when called from inside the core (see {@linkcode CoreLock}).
   */
  withCore<T>(fn: (stack: Stack, now: number) => T): T {
    // The lock reads the session's clock at entry: that is the core's `now`.
    return this.lock.run((now) => {
      this.lastActivity = now;
      return fn(this.stack, now);
    });
  }

  /**
   * Attaches a tunnel. A second tunnel replaces the first, which is closed
   * with {@linkcode CLOSE_REPLACED}: a client that reconnects after a network
   * fault must win over its own half-dead earlier connection. A gratuitous ARP
   * announces the stack on the new link.
   */
  attachTunnel(endpoint: TunnelEndpoint): void {
    if (this.#closed) {
      endpoint.close(CLOSE_SESSION_ENDED, "session ended");
      return;
    }
    const previous = this.#tunnel;
    this.#tunnel = endpoint;
    this.#tunnelSince = this.#clock.now();
    this.tunnelStats.attaches++;
    if (previous) previous.close(CLOSE_REPLACED, "replaced by a newer tunnel for this session");
    this.withCore((stack) => {
      stack.setLinkOffload(endpoint.offload ?? 0);
      stack.announce();
    });
  }

  /** Detaches `endpoint` if it is still the attached tunnel; the session lives on. */
  detachTunnel(endpoint: TunnelEndpoint): void {
    if (this.#tunnel === endpoint) {
      this.#tunnel = undefined;
      this.#tunnelSince = undefined;
      this.stack.setLinkOffload(0);
    }
  }

  /**
   * Closes the attached tunnel, if any, and keeps the session: the client may
   * reconnect. `code` is the WebSocket close code the client sees.
   */
  closeTunnel(code: number, reason: string): void {
    const t = this.#tunnel;
    if (!t) return;
    this.detachTunnel(t);
    t.close(code, reason);
  }

  /**
   * Runs `fn` when the session ends, before its sockets close (the egress
   * gateway closes its runtime sockets and timers there). Runs at once when
   * the session already ended.
   */
  onClose(fn: () => void): void {
    if (this.#closed) fn();
    else this.#closeHooks.push(fn);
  }

  /**
   * Ends the session: runs the {@linkcode Session.onClose} hooks, closes
   * every socket (connections with a RST, which still reaches the tunnel) and
   * whatever else the core holds, then closes its tunnel, stops its timer and
   * drops queued work.
   */
  close(): void {
    if (this.#closed) return;
    try {
      for (const fn of this.#closeHooks.splice(0)) fn();
      this.sockets.closeAll();
    } finally {
      this.#closed = true;
    }
    this.#clearTimer();
    this.#input = [];
    this.#inputAt = [];
    this.#inputOffload = [];
    this.#link.drain();
    this.capture.close();
    const t = this.#tunnel;
    this.#tunnel = undefined;
    t?.close(CLOSE_SESSION_ENDED, "session ended");
  }

  /**
   * The session's frame counters: the core's, plus the frames the session
   * dropped before the core (`input_queue_full`, counted in `rxFrames` too)
   * and after it (`no_tunnel`).
   */
  frameCounters(): StackCountersSnapshot {
    const c = this.stack.counters.snapshot();
    return {
      ...c,
      rxFrames: c.rxFrames + this.tunnelStats.inputQueueDrops,
      drops: { ...c.drops, input_queue_full: this.tunnelStats.inputQueueDrops },
      txDrops: { ...c.txDrops, no_tunnel: this.tunnelStats.framesWithoutTunnel },
    };
  }

  /** The attached tunnel's description and when it was attached (clock time), or undefined. */
  get tunnel(): { readonly description: string; readonly attachedAt: number } | undefined {
    const t = this.#tunnel;
    return t ? { description: t.description, attachedAt: this.#tunnelSince! } : undefined;
  }

  #drainInput(): void {
    const start = this.#clock.now();
    this.lastActivity = start;
    const stack = this.stack;
    const frames = this.#input;
    const at = this.#inputAt;
    const offload = this.#inputOffload;
    const wait = this.coreDelay.frames;
    // Frames that arrive while we work are appended and processed in this same pass.
    try {
      for (let i = 0; i < frames.length; i++) {
        wait.record(start - at[i]);
        stack.input(frames[i], at[i], offload[i]);
      }
    } finally {
      frames.length = 0;
      at.length = 0;
      offload.length = 0;
    }
  }

  /** Runs after every release of the core lock, outside the critical section. */
  #afterRelease(): void {
    if (this.#closed) return;
    if (this.#input.length > 0) {
      // run() re-enters #afterRelease on its own release, which then flushes.
      this.lock.run(() => this.#drainInput());
      return;
    }
    this.#flushOutput();
    this.#deliverEvents();
    this.#armTimer();
  }

  /** Hands the events the core recorded to their owners (socket endpoints), outside the lock. */
  #deliverEvents(): void {
    const dirty = this.stack.takeDirty();
    for (const target of dirty) {
      const bits = target.events;
      target.events = 0;
      const owner = target.owner as EventOwner | undefined;
      if (bits !== 0 && owner) owner.onEvents(bits);
    }
  }

  #flushOutput(): void {
    if (this.#link.length === 0) return;
    let { frames, offload } = this.#link.drainWithOffload();
    const tunnel = this.#tunnel;
    if (offload !== undefined && !tunnel?.offload) {
      // Offloaded frames for a tunnel that does not (or no longer) take them: finished here.
      frames = finishOffloadedFrames(frames, offload);
      offload = undefined;
    }
    // With offload the capture shows the large segments the tunnel carries (as tcpdump
    // does on an interface with TSO), their TCP checksums left partial.
    this.capture.offer(frames, "tx");
    if (tunnel) tunnel.send(frames, offload);
    else this.tunnelStats.framesWithoutTunnel += frames.length;
  }

  /**
   * Keeps the runtime timer at or before the stack's next deadline. It is
   * re-armed only when that deadline moves earlier (or after it fired): a
   * deadline that moved later (every ACK pushes the retransmission timer
   * out) leaves the timer where it is, to fire early once with nothing due
   * and re-arm then, instead of clearing and setting a runtime timer per
   * core entry. With no deadline left, the timer is cleared.
   */
  #armTimer(): void {
    const next = this.stack.nextDeadline();
    if (next === undefined) {
      this.#clearTimer();
      return;
    }
    if (this.#timerAt !== undefined && this.#timerAt <= next) return;
    this.#clearTimer();
    this.#timerAt = next;
    this.#timer = this.#clock.setTimer(next, () => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      if (this.#closed) return;
      const now = this.#clock.now();
      this.coreDelay.timers.record(now - next);
      this.lock.run(() => this.stack.poll(now));
    });
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = undefined;
  }
}
