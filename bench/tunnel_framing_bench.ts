/**
 * Measures the tunnel's two framings end to end in one process: a real
 * server on loopback, the tunnel client with the `ws` package (as the CLI
 * uses), and a port that plays a TAP device reading `batch` frames per poll.
 * The port sends ICMP echo requests of full-size frames (1514 bytes) and the
 * stack answers each with an echo reply of the same size, so both directions
 * carry the same load; at most `window` requests are in flight.
 *
 *   deno task bench:tunnel -- [frames=40000] [batch=32] [window=1024]
 *
 * Prints frames/s, messages/s and MB/s each way for frame-per-message and
 * for the QEMU stream subprotocol (batched), and the ratio.
 *
 * @module
 */

import process from "node:process";
import WsWebSocket from "ws";
import { serveDeno } from "../src/http/serve_deno.ts";
import { SessionRegistry, SystemClock } from "../src/session/mod.ts";
import { IpProtocol, parseMacAddress } from "../src/wire/mod.ts";
import { TunnelClient, type WebSocketConstructor } from "../tunnel/client.ts";
import type { FramePort, FrameSink } from "../tunnel/ports/frame_port.ts";
import type { TunnelFraming } from "../src/wire/tunnel_protocol.ts";
import { arpRequest, echoRequest, isArpReply } from "../tests/_tunnel_test_util.ts";

/** A port the bench drives: counts echo replies and wakes the pump. */
class BenchPort implements FramePort {
  readonly name = "bench";
  readonly maxFrameLen = 1514;
  readonly stats = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, txErrors: 0 };
  sink: FrameSink | undefined;
  replies = 0;
  arpSeen = false;
  wake: () => void = () => {};
  start(sink: FrameSink): void {
    this.sink = sink;
  }
  send(frame: Uint8Array): void {
    if (isArpReply(frame)) this.arpSeen = true;
    else if (frame[23] === IpProtocol.ICMP && frame[34] === 0) this.replies++;
    this.wake();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** One run: returns elapsed ms and the client's counters. */
async function run(
  base: string,
  framing: TunnelFraming,
  frames: number,
  batch: number,
  window: number,
) {
  const res = await fetch(`${base}/v1/sessions`, { method: "POST" });
  const s = await res.json() as { id: string; token: string; mac: string };
  const port = new BenchPort();
  const client = new TunnelClient({
    server: base,
    sessionId: s.id,
    token: s.token,
    port,
    framing,
    WebSocket: WsWebSocket as unknown as WebSocketConstructor,
    reconnect: false,
  });
  client.start();
  while (client.state !== "open") await new Promise((r) => setTimeout(r, 5));
  while (!port.arpSeen) {
    port.sink!([arpRequest()]);
    await new Promise((r) => setTimeout(r, 20));
  }
  const mac = parseMacAddress(s.mac);
  const template = echoRequest(mac, 0, 1472); // a 1514-byte frame
  let sent = 0;
  const t0 = performance.now();
  const deadline = t0 + 60_000;
  while (port.replies < frames && performance.now() < deadline) {
    while (sent < frames && sent - port.replies + batch <= window) {
      const b: Uint8Array[] = [];
      for (let i = 0; i < batch && sent < frames; i++, sent++) b.push(template);
      port.sink!(b);
    }
    await new Promise<void>((r) => {
      port.wake = r;
      setTimeout(r, 50);
    });
    // Requests lost to backpressure (counted by the client) are re-sent to keep the window full.
    if (sent - port.replies > window) sent = port.replies;
  }
  const ms = performance.now() - t0;
  const stats = { ...client.stats };
  await client.close();
  return { ms, stats, replies: port.replies };
}

if (import.meta.main) {
  const [frames = 40_000, batch = 32, window = 1024] = process.argv.slice(2).map(Number);
  const registry = new SessionRegistry({ clock: new SystemClock() });
  const ac = new AbortController();
  const base = await new Promise<string>((resolve) => {
    serveDeno({
      registry,
      hostname: "127.0.0.1",
      port: 0,
      signal: ac.signal,
      requestLog: false,
      onListen: resolve,
    });
  });
  const results: Record<string, number> = {};
  for (const framing of ["frame", "qemu-stream"] as const) {
    await run(base, framing, 2000, batch, window); // warm-up
    const r = await run(base, framing, frames, batch, window);
    const s = r.ms / 1000;
    const fps = r.replies / s;
    results[framing] = fps;
    console.log(
      `${framing.padEnd(11)}: ${r.replies} echo round trips of 1514-byte frames in ${
        r.ms.toFixed(0)
      } ms; ` +
        `up ${(r.stats.framesUp / s).toFixed(0)} frames/s in ${
          (r.stats.messagesUp / s).toFixed(0)
        } msgs/s ` +
        `${(r.stats.bytesUp / s / 1e6).toFixed(1)} MB/s; down ${
          (r.stats.framesDown / s).toFixed(0)
        } frames/s ` +
        `in ${(r.stats.messagesDown / s).toFixed(0)} msgs/s ${
          (r.stats.bytesDown / s / 1e6).toFixed(1)
        } MB/s; ` +
        `dropped ${r.stats.framesDropped}`,
    );
  }
  console.log(
    `ratio qemu-stream/frame (batch ${batch}, window ${window}): ${
      (results["qemu-stream"] / results.frame).toFixed(2)
    }x frames/s`,
  );
  registry.close();
  ac.abort();
}
