// The SDK scenario every runtime runs (tests/client_sdk_test.ts: Deno, Bun,
// Node; tests/client_browser_test.ts: headless Chromium) against
// tests/_sdk_server.ts: connect and echo 1 MiB byte-exact, listen and accept
// a connection the tunnelled machine makes, UDP both ways, and the errors.
// Plain JavaScript taking the SDK module as an argument, so the same code
// runs on the TypeScript sources (Deno, Bun) and on the bundle (Node, browsers).
//
// Each step logs `ok <step>: <detail>`; a failure throws.

/**
 * @param {any} sdk the module of src/client/mod.ts (or dist/netisle-client.js)
 * @param {{server: string, id: string, token: string, WebSocket?: any, log: (line: string) => void}} o
 */
export async function runScenario(sdk, o) {
  const { NetisleClient, NetisleError } = sdk;
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const client = new NetisleClient({ server: o.server, WebSocket: o.WebSocket });
  const session = await client.getSession(o.id, o.token);
  const info = await session.info();
  check(info.ipv4.address === "10.0.2.2", `the stack is at ${info.ipv4.address}`);
  o.log(`ok session: ${info.id} at ${info.ipv4.address}/${info.ipv4.prefixLength}`);

  // 1. connect + echo 1 MiB byte-exact, with a half-close (FIN) from our side.
  const payload = new Uint8Array(1024 * 1024);
  let x = 2463534242;
  for (let i = 0; i < payload.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    payload[i] = x & 0xff;
  }
  const socket = session.connect({ hostname: "10.0.2.15", port: 7 }, { allowHalfOpen: true });
  const opened = await socket.opened;
  check(opened.remoteAddress === "10.0.2.15:7", `remote ${opened.remoteAddress}`);
  const writing = (async () => {
    const w = socket.writable.getWriter();
    for (let off = 0; off < payload.length; off += 100_000) {
      await w.write(payload.subarray(off, Math.min(payload.length, off + 100_000)));
    }
    await w.close(); // FIN: the echo answers with its own after the last byte
  })();
  writing.catch(() => {}); // awaited below; a failed read must not leave it unhandled
  const back = new Uint8Array(payload.length + 1);
  let got = 0;
  for await (const chunk of socket.readable) {
    check(got + chunk.length <= payload.length, "no more bytes than sent");
    back.set(chunk, got);
    got += chunk.length;
  }
  await writing;
  await socket.closed;
  check(got === payload.length, `got ${got} of ${payload.length} bytes back`);
  for (let i = 0; i < payload.length; i++) {
    if (back[i] !== payload[i]) throw new Error(`echo differs at byte ${i}`);
  }
  o.log(`ok echo: ${got} bytes byte-exact from ${opened.localAddress} to ${opened.remoteAddress}`);

  // 2. listen + accept: the tunnelled machine dials back to the stack.
  const listener = await session.listen({ port: 0 });
  check(listener.local.address === "10.0.2.2", `listening on ${listener.local.address}`);
  const accepting = listener.accept();
  const dialer = session.connect("10.0.2.15:9");
  const dw = dialer.writable.getWriter();
  await dw.write(`${listener.local.port}\n`);
  const conn = await accepting;
  const connInfo = await conn.opened;
  check(connInfo.remote?.address === "10.0.2.15", `accepted from ${connInfo.remoteAddress}`);
  const reader = conn.readable.getReader();
  let hello = "";
  while (!hello.includes("\n")) {
    const r = await reader.read();
    check(!r.done, "the greeting arrives");
    hello += dec.decode(r.value);
  }
  check(hello === "hello from 10.0.2.15\n", `greeting ${JSON.stringify(hello)}`);
  const cw = conn.writable.getWriter();
  await cw.write(enc.encode("and back\n"));
  await cw.close();
  let echoed = "";
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    echoed += dec.decode(r.value);
  }
  check(echoed === "and back\n", `echoed ${JSON.stringify(echoed)}`);
  await conn.closed;
  await dialer.close();
  o.log(`ok listen/accept: port ${listener.local.port}, ${connInfo.remoteAddress} connected`);
  const iterating = (async () => {
    const seen = [];
    for await (const s of listener) {
      seen.push(s);
      await s.close();
    }
    return seen.length;
  })();
  await listener.close();
  check((await iterating) === 0, "the iterator ends when the listener closes");

  // 3. UDP both ways, unconnected and connected.
  const udp = await session.udp();
  check(udp.local.port >= 49152, `ephemeral port ${udp.local.port}`);
  await udp.send("ping", { hostname: "10.0.2.15", port: 7 });
  const d = await udp.receive();
  check(dec.decode(d.data) === "ping" && d.address === "10.0.2.15" && d.port === 7, "udp echo");
  await udp.close();
  const cu = await session.udp({ remote: "10.0.2.15:7" });
  for (let i = 0; i < 20; i++) await cu.send(enc.encode(`dgram ${i}`));
  const seen = new Set();
  for await (const dg of cu) {
    seen.add(dec.decode(dg.data));
    if (seen.size === 20) break;
  }
  await cu.close();
  o.log(`ok udp: echo from ${d.address}:${d.port}, 20 datagrams on a connected socket`);

  // 4. Errors carry the API's codes.
  const refused = session.connect({ hostname: "10.0.2.15", port: 1 });
  const e1 = await refused.opened.then(() => undefined, (e) => e);
  check(e1 instanceof NetisleError && e1.code === "ECONNREFUSED", `refused: ${e1?.code}`);
  const e2 = await session.connect({ hostname: "192.168.99.1", port: 80 }).opened.catch((e) => e);
  check(e2 instanceof NetisleError && e2.code === "EHOSTUNREACH", `unreachable: ${e2?.code}`);
  const e3 = await client.getSession(o.id, "wrong-token").catch((e) => e);
  check(e3 instanceof NetisleError && e3.code === "EUNAUTHORIZED", `token: ${e3?.code}`);
  const e4 = await session.listen({ port: 9999 }).then(() => session.listen({ port: 9999 }))
    .catch((e) => e);
  check(e4 instanceof NetisleError && e4.code === "EADDRINUSE", `port taken: ${e4?.code}`);
  const closedUdp = await session.udp({ remote: "10.0.2.15:5" });
  await closedUdp.send("anyone?");
  const e5 = await closedUdp.receive().catch((e) => e);
  check(e5 instanceof NetisleError && e5.code === "ECONNREFUSED", `udp refused: ${e5?.code}`);
  await closedUdp.close();
  o.log(`ok errors: ${[e1, e2, e3, e4, e5].map((e) => e.code).join(" ")}`);

  const left = await session.sockets();
  const streams = left.sockets.filter((s) => s.streaming);
  check(streams.length === 0, `no stream left open (${JSON.stringify(streams)})`);
  o.log(`ok done: ${left.sockets.length} socket(s) left (the port-9999 listener)`);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}
