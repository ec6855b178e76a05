/**
 * Shared helpers of the tunnel tests: crafted ARP and ICMP frames from a
 * peer at 10.0.2.15, matchers for the stack's answers, an in-memory frame
 * port, and a real Deno server on loopback.
 *
 * @module
 */

import assert from "node:assert/strict";
import { serveDeno } from "../src/http/serve_deno.ts";
import { SessionRegistry, SystemClock } from "../src/session/mod.ts";
import {
  ETHERNET_HEADER_LEN,
  EthernetRepr,
  EtherType,
  Icmpv4Repr,
  IpProtocol,
  Ipv4Repr,
} from "../src/wire/mod.ts";
import { arpRequest, PEER_IP, PEER_MAC, STACK_IP } from "../src/session/_session_test_util.ts";
import type { FramePort, FrameSink } from "../tunnel/ports/frame_port.ts";

export { arpRequest, PEER_IP, PEER_MAC, STACK_IP };

/** An ICMP echo request from the peer to the stack with `dataLen` bytes of data. */
export function echoRequest(stackMac: Uint8Array, seq: number, dataLen = 32): Uint8Array {
  const icmp: Icmpv4Repr = {
    type: "echo_request",
    ident: 9,
    seqNo: seq,
    data: new Uint8Array(dataLen),
  };
  const payload = new Uint8Array(Icmpv4Repr.bufferLen(icmp));
  Icmpv4Repr.emit(icmp, payload);
  const f = new Uint8Array(ETHERNET_HEADER_LEN + 20 + payload.length);
  EthernetRepr.emit({ dst: stackMac, src: PEER_MAC, etherType: EtherType.IPV4 }, f);
  Ipv4Repr.emit(
    { src: PEER_IP, dst: STACK_IP, protocol: IpProtocol.ICMP, payloadLen: payload.length, ttl: 64 },
    f.subarray(ETHERNET_HEADER_LEN),
  );
  f.set(payload, ETHERNET_HEADER_LEN + 20);
  return f;
}

/** Whether a frame is an ARP reply. */
export const isArpReply = (f: Uint8Array): boolean =>
  f[12] === 0x08 && f[13] === 0x06 && f[21] === 2;

/** A matcher of the echo reply with sequence number `seq`. */
export const isEchoReply = (seq: number) => (f: Uint8Array): boolean =>
  f[12] === 0x08 && f[13] === 0x00 && f[23] === IpProtocol.ICMP && f[34] === 0 &&
  ((f[40] << 8) | f[41]) === seq;

/** An in-memory frame port: the test plays the local machine. */
export class MemoryPort implements FramePort {
  readonly name = "memory";
  readonly maxFrameLen = 1514;
  readonly stats = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, txErrors: 0 };
  received: Uint8Array[] = [];
  sink: FrameSink | undefined;
  #waiters: Array<() => void> = [];
  /** Starts: the test calls `sink` to play frames read from the device. */
  start(sink: FrameSink): void {
    this.sink = sink;
  }
  /** Records a frame from the tunnel. */
  send(frame: Uint8Array): void {
    this.received.push(frame.slice());
    for (const w of this.#waiters.splice(0)) w();
  }
  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
  /** Resolves with the first received frame matching `pred`. */
  async waitFor(pred: (f: Uint8Array) => boolean, timeoutMs = 5000): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error("timed out waiting for a frame from the tunnel");
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

/** Runs `fn` against a real Deno server on loopback; always shuts it down. */
export async function withServer(
  fn: (base: string, registry: SessionRegistry) => Promise<void>,
  options: { idleTimeoutSeconds?: number } = {},
): Promise<void> {
  const registry = new SessionRegistry({ clock: new SystemClock() });
  const ac = new AbortController();
  let base = "";
  let server: { finished: Promise<void> } | undefined;
  const ready = new Promise<void>((resolve) => {
    server = serveDeno({
      registry,
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      requestLog: false,
      idleTimeoutSeconds: options.idleTimeoutSeconds,
      onListen: (url) => {
        base = url;
        resolve();
      },
    });
  });
  await ready;
  try {
    await fn(base, registry);
  } finally {
    registry.close();
    ac.abort();
    await server?.finished;
  }
}

/** The created session as the API returns it. */
export interface CreatedSession {
  id: string;
  token: string;
  mac: string;
  tunnel: { url: string };
}

/** Creates a session over the API. */
export async function createSession(base: string): Promise<CreatedSession> {
  const res = await fetch(`${base}/v1/sessions`, { method: "POST" });
  assert.equal(res.status, 201);
  return await res.json() as CreatedSession;
}

/** Polls `cond` every 20 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(cond: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
