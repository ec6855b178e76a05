import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock, SessionRegistry } from "../session/mod.ts";
import { createApp } from "./app.ts";
import { pcapStream } from "./pcap_stream.ts";
import { bufferCost } from "../stack/session_quota.ts";
import { arpRequest } from "../session/_session_test_util.ts";
import { endsAt } from "../socket/_session_peer_test_util.ts";

const IN_CI = process.env.CI === "true";
const tsharkProbe = spawnSync("tshark", ["-v"], { encoding: "utf8" });
const TSHARK_MISSING = tsharkProbe.error || tsharkProbe.status !== 0
  ? "tshark is not installed (apt-get install -y tshark; .ci/run installs it)"
  : undefined;
if (TSHARK_MISSING && !IN_CI) {
  console.warn(
    `\n*** SKIPPING the tshark checks of the pcap stream: ${TSHARK_MISSING}. ` +
      `Set CI=true to make this a failure. ***\n`,
  );
}
/** Skips without tshark, except under CI=true where the test runs and fails. */
const tsharkSkip = IN_CI ? undefined : TSHARK_MISSING;

function setup() {
  const clock = new ManualClock(0);
  const registry = new SessionRegistry({ clock, limits: { maxSessions: 10 } });
  const app = createApp({ registry, requestLog: false });
  const make = async () => {
    const res = await app.request("/v1/sessions", { method: "POST" });
    const { id, token } = await res.json();
    return { id, token, session: registry.get(id)!, auth: { authorization: `Bearer ${token}` } };
  };
  return { registry, app, make, clock };
}

/** Runs tshark over a pcap file and returns its stdout (one line per packet for -T fields). */
function tshark(bytes: Uint8Array, args: string[]): string {
  if (TSHARK_MISSING) assert.fail(`CI=true but the pcap test cannot run: ${TSHARK_MISSING}`);
  const dir = mkdtempSync(join(tmpdir(), "netisle-pcap-"));
  try {
    const file = join(dir, "capture.pcap");
    writeFileSync(file, bytes);
    const r = spawnSync("tshark", ["-r", file, ...args], { encoding: "utf8" });
    assert.equal(r.status, 0, `tshark failed: ${r.stderr}`);
    return r.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("GET /v1/sessions/:sid/pcap", () => {
  it(
    "streams frames both ways as a pcap file that tshark reads",
    { skip: tsharkSkip },
    async () => {
      const { app, make } = setup();
      const { id, session, auth } = await make();
      const res = await app.request(`/v1/sessions/${id}/pcap?maxFrames=3`, { headers: auth });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/vnd.tcpdump.pcap");
      assert.match(res.headers.get("content-disposition") ?? "", new RegExp(`${id}\\.pcap`));
      assert.equal(session.capture.size, 1, "subscribed when the request arrived");
      session.input([arpRequest()]); // rx request, tx reply
      session.input([arpRequest("10.0.2.99")]); // rx only: not for us
      session.input([arpRequest()]); // beyond maxFrames
      const bytes = new Uint8Array(await res.arrayBuffer());
      const v = new DataView(bytes.buffer);
      assert.equal(v.getUint32(0, true), 0xa1b2c3d4);
      assert.equal(v.getUint16(4, true), 2);
      assert.equal(v.getUint16(6, true), 4);
      assert.equal(v.getUint32(16, true), 1514, "snaplen = the session's max frame length");
      assert.equal(v.getUint32(20, true), 1, "LINKTYPE_ETHERNET");
      assert.equal(session.capture.size, 0, "the subscription ended with the stream");

      const out = tshark(bytes, [
        "-T",
        "fields",
        "-e",
        "frame.len",
        "-e",
        "arp.opcode",
        "-e",
        "arp.dst.proto_ipv4",
      ]);
      const rows = out.trim().split("\n").map((l) => l.split("\t"));
      assert.deepEqual(rows, [
        ["42", "1", "10.0.2.2"],
        ["60", "2", "10.0.2.15"],
        ["42", "1", "10.0.2.99"],
      ]);
    },
  );

  it("writes nanosecond timestamps with ?precision=ns", { skip: tsharkSkip }, async () => {
    const { app, make } = setup();
    const { id, session, auth } = await make();
    const res = await app.request(`/v1/sessions/${id}/pcap?maxFrames=1&precision=ns`, {
      headers: auth,
    });
    const before = Date.now() / 1000;
    session.input([arpRequest()]);
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.equal(new DataView(bytes.buffer).getUint32(0, true), 0xa1b23c4d);
    const [time, protocol] = tshark(bytes, [
      "-T",
      "fields",
      "-e",
      "frame.time_epoch",
      "-e",
      "_ws.col.Protocol",
    ])
      .trim().split("\t");
    assert.match(time, /^\d+\.\d{9}$/, "nine fraction digits");
    assert.ok(
      Math.abs(Number(time) - before) < 5,
      `timestamp ${time} is wall-clock time near ${before}`,
    );
    assert.equal(protocol, "ARP");
  });

  it("ends when the client goes away (request signal), leaving no subscriber", async () => {
    const { app, make } = setup();
    const { id, session, auth } = await make();
    const ac = new AbortController();
    const res = await app.request(`/v1/sessions/${id}/pcap`, { headers: auth, signal: ac.signal });
    assert.equal(session.capture.size, 1);
    session.input([arpRequest()]);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.equal(first.value?.length, 24, "the header comes first");
    ac.abort();
    let total = 0;
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      total += r.value.length;
    }
    assert.equal(total, 16 + 42 + 16 + 60, "frames queued before the abort are still written");
    assert.equal(session.capture.size, 0);
  });

  it("ends when the reader cancels the stream", async () => {
    const { app, make } = setup();
    const { id, session, auth } = await make();
    const res = await app.request(`/v1/sessions/${id}/pcap`, { headers: auth });
    await res.body!.cancel();
    assert.equal(session.capture.size, 0);
  });

  it("ends after ?seconds= on the session's clock", async () => {
    const { app, make, clock } = setup();
    const { id, session, auth } = await make();
    const res = await app.request(`/v1/sessions/${id}/pcap?seconds=0.05`, { headers: auth });
    assert.equal(session.capture.size, 1);
    const bytes = new Uint8Array(await endsAt(clock, 50, res.arrayBuffer()));
    assert.equal(bytes.length, 24);
    assert.equal(session.capture.size, 0);
  });

  it("ends when the session is deleted", async () => {
    const { app, make } = setup();
    const { id, auth } = await make();
    const res = await app.request(`/v1/sessions/${id}/pcap`, { headers: auth });
    const body = res.arrayBuffer();
    const del = await app.request(`/v1/sessions/${id}`, { method: "DELETE", headers: auth });
    assert.equal(del.status, 204);
    assert.equal((await body).byteLength, 24);
  });

  it("drops and counts frames when the client reads too slowly", async () => {
    const { make } = setup();
    const { session } = await make();
    let ended: { frames: number; dropped: number } | undefined;
    const stream = pcapStream(session, {
      maxQueuedBytes: bufferCost(4 * (16 + 42)), // one chunk of four records
      onEnd: (s) => ended = s,
    });
    for (let i = 0; i < 10; i++) session.input([arpRequest("10.0.2.99")]); // 42 bytes each
    session.close();
    const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    assert.equal(bytes.length, 24 + 4 * (16 + 42));
    assert.deepEqual(ended, { frames: 4, dropped: 6 });
    assert.equal(session.capture.dropped, 6);
  });

  for (
    const [query, field] of [
      ["maxFrames=0", "maxFrames"],
      ["maxFrames=1.5", "maxFrames"],
      ["maxFrames=lots", "maxFrames"],
      ["seconds=-1", "seconds"],
      ["seconds=abc", "seconds"],
      ["seconds=100000", "seconds"],
      ["precision=ms", "precision"],
    ] as const
  ) {
    it(`answers 400 naming ${field} for ?${query}`, async () => {
      const { app, make } = setup();
      const { id, session, auth } = await make();
      const res = await app.request(`/v1/sessions/${id}/pcap?${query}`, { headers: auth });
      assert.equal(res.status, 400);
      const p = await res.json();
      assert.equal(p.code, "EINVAL");
      assert.match(p.detail, new RegExp(field));
      assert.ok(p.issues.some((i: { path: string[] }) => i.path[0] === field));
      assert.equal(session.capture.size, 0, "nothing subscribed");
    });
  }

  it("answers 429 EMFILE beyond the session's captures at once", async () => {
    const { app, make } = setup();
    const { id, session, auth } = await make();
    const open = [];
    for (let i = 0; i < session.capture.maxSubscribers; i++) {
      const res = await app.request(`/v1/sessions/${id}/pcap`, { headers: auth });
      assert.equal(res.status, 200);
      open.push(res);
    }
    const over = await app.request(`/v1/sessions/${id}/pcap`, { headers: auth });
    assert.equal(over.status, 429);
    assert.equal((await over.json()).code, "EMFILE");
    for (const res of open) await res.body!.cancel();
    assert.equal(session.capture.size, 0);
  });

  it("HEAD answers the headers and starts no capture (and 429 when GET would)", async () => {
    const { app, make } = setup();
    const { id, session, auth } = await make();
    for (let i = 0; i < session.capture.maxSubscribers + 1; i++) {
      const head = await app.request(`/v1/sessions/${id}/pcap`, { method: "HEAD", headers: auth });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("content-type"), "application/vnd.tcpdump.pcap");
      assert.equal(head.body, null);
      assert.equal(session.capture.size, 0, "no capture slot taken");
    }
    const open = [];
    for (let i = 0; i < session.capture.maxSubscribers; i++) {
      open.push(await app.request(`/v1/sessions/${id}/pcap`, { headers: auth }));
    }
    const full = await app.request(`/v1/sessions/${id}/pcap`, { method: "HEAD", headers: auth });
    assert.equal(full.status, 429, "all captures taken: HEAD says what GET would");
    for (const res of open) await res.body!.cancel();
    assert.equal(session.capture.size, 0);
    assert.equal(session.stack.quota.memory.used, 0, "the captures' memory is given back");
  });

  it("needs the session's own token (401) and a known session (404)", async () => {
    const { app, make } = setup();
    const a = await make();
    const b = await make();
    assert.equal((await app.request(`/v1/sessions/${a.id}/pcap`)).status, 401);
    const other = await app.request(`/v1/sessions/${a.id}/pcap`, { headers: b.auth });
    assert.equal(other.status, 401);
    const query = await app.request(`/v1/sessions/${a.id}/pcap?token=${a.token}`);
    assert.equal(query.status, 401, "the token is not accepted in the query here");
    const unknown = await app.request("/v1/sessions/s_AAAAAAAAAAAAAAAAAAAAAA/pcap", {
      headers: a.auth,
    });
    assert.equal(unknown.status, 404);
    assert.equal(a.session.capture.size, 0);
  });
});
