// netisle embedded in Node (or Deno, Bun, a browser), with no server: two
// sessions (10.0.2.2 and 10.0.2.3) joined by an in-memory "wire" that hands
// each one's Ethernet frames to the other. 10.0.2.3 runs a TCP echo server
// (RFC 862); 10.0.2.2 connects (ARP, handshake), sends bytes and reads them
// back, then both close.
//
//   npm run build && node examples/node/embed.mjs      # also: bun, deno run --allow-read
//
// Imports the bundle dist/netisle.js (`npm run build`): Node cannot load the
// TypeScript sources; Deno and Bun can also import mod.ts directly.

// The bundle is a build output (not in git): a computed import, so that type
// checkers do not require it and a missing build gets a clear message.
const bundle = new URL("../../dist/netisle.js", import.meta.url).href;
const netisle = await import(bundle).catch((err) => {
  throw new Error(`cannot load ${bundle}: run \`npm run build\` first (${err})`);
});
const { parseIpv4Address, parseMacAddress, Session, SystemClock, TcpServer, TcpSocket } = netisle;

const clock = new SystemClock();

function makeSession(id, mac, address) {
  return new Session({
    id,
    token: id,
    clock,
    stack: {
      mac: parseMacAddress(mac),
      ipv4: { address: parseIpv4Address(address), prefixLength: 24 },
      mtu: 1500,
    },
  });
}

const a = makeSession("a", "02:00:00:00:00:02", "10.0.2.2");
const b = makeSession("b", "02:00:00:00:00:03", "10.0.2.3");

// The wire: frames go to the other session on a later task, never inside the
// sender's core call. Copied, as a real link would.
let frames = 0;
function link(from, to) {
  from.attachTunnel({
    description: `in-memory wire to ${to.id}`,
    send(out) {
      frames += out.length;
      const copies = out.map((f) => f.slice());
      setTimeout(() => to.input(copies), 0);
    },
    close() {},
  });
}
link(a, b);
link(b, a);

// 10.0.2.3: echo every byte back until the client's FIN.
const server = TcpServer.listen(b, { port: 7 });
server.serve(async (sock) => {
  for (;;) {
    const chunk = await sock.receive(64 * 1024);
    if (chunk === null) break;
    await sock.write(chunk);
  }
  sock.shutdown("write");
});

// 10.0.2.2: connect, send a message and 200 kB of pseudo-random bytes, read the echo.
const payload = new Uint8Array(200_000);
let x = 12345;
for (let i = 0; i < payload.length; i++) {
  x = (x * 1103515245 + 12345) >>> 0;
  payload[i] = x >>> 24;
}
const hello = new TextEncoder().encode("hello from netisle in Node\n");
const sent = new Uint8Array(hello.length + payload.length);
sent.set(hello);
sent.set(payload, hello.length);

const sock = await TcpSocket.connect(a, { address: "10.0.2.3", port: 7, timeoutMs: 5000 });
console.log(`connected 10.0.2.2 -> 10.0.2.3:7`);
const reading = (async () => {
  const parts = [];
  let n = 0;
  for (;;) {
    const chunk = await sock.receive(64 * 1024);
    if (chunk === null) break;
    parts.push(chunk);
    n += chunk.length;
  }
  const got = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    got.set(p, at);
    at += p.length;
  }
  return got;
})();
await sock.write(sent);
sock.shutdown("write");
const got = await reading;

const same = got.length === sent.length && got.every((v, i) => v === sent[i]);
console.log(
  `first line back: ${JSON.stringify(new TextDecoder().decode(got.subarray(0, hello.length)))}`,
);
console.log(`echo ${same ? "OK" : "MISMATCH"}: sent ${sent.length} bytes, got ${got.length} back`);
console.log(`frames on the wire: ${frames}`);
server.close();
a.close();
b.close();
if (!same) throw new Error("the echo differs from what was sent");
