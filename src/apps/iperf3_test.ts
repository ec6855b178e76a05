import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  decodeIperf3Params,
  decodeIperf3Results,
  decodeIperf3State,
  encodeIperf3Json,
  encodeIperf3Params,
  encodeIperf3Results,
  encodeIperf3State,
  IPERF3_COOKIE_SIZE,
  IPERF3_MAX_JSON_BYTES,
  type Iperf3Conn,
  iperf3CookieEquals,
  iperf3CookieText,
  Iperf3Error,
  Iperf3Reader,
  Iperf3State,
  iperf3StreamId,
  makeIperf3Cookie,
} from "./iperf3_protocol.ts";
import { Iperf3Server, type Iperf3TestReport } from "./iperf3_server.ts";
import { iperf3Client, runIperf3Client } from "./iperf3_client.ts";
import { Session, SystemClock } from "../session/mod.ts";
import { parseIpv4Address, parseMacAddress } from "../wire/mod.ts";

/** One direction of an in-memory pipe, bounded at `limit` queued bytes. */
class Half {
  chunks: Uint8Array[] = [];
  queued = 0;
  ended = false;
  reset = false;
  #readers: Array<() => void> = [];
  #writers: Array<() => void> = [];
  constructor(readonly limit: number) {}
  wake(list: Array<() => void>) {
    for (const w of list.splice(0)) w();
  }
  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      if (this.reset || this.ended) throw new Error("EPIPE");
      const n = Math.min(data.length - off, this.limit - this.queued);
      if (n > 0) {
        this.chunks.push(data.slice(off, off + n));
        this.queued += n;
        off += n;
        this.wake(this.#readers);
      } else {
        await new Promise<void>((r) => this.#writers.push(r));
      }
    }
    // A macrotask per write, as a network would take: lets the test's timers fire.
    await new Promise((r) => setTimeout(r, 0));
  }
  async receive(max: number): Promise<Uint8Array | null> {
    for (;;) {
      if (this.reset) throw new Error("ECONNRESET");
      if (this.chunks.length > 0) {
        let c = this.chunks[0];
        if (c.length > max) {
          this.chunks[0] = c.subarray(max);
          c = c.subarray(0, max);
        } else {
          this.chunks.shift();
        }
        this.queued -= c.length;
        this.wake(this.#writers);
        return c;
      }
      if (this.ended) return null;
      await new Promise<void>((r) => this.#readers.push(r));
    }
  }
  end() {
    this.ended = true;
    this.wake(this.#readers);
    this.wake(this.#writers);
  }
  kill() {
    this.reset = true;
    this.wake(this.#readers);
    this.wake(this.#writers);
  }
}

class PipeEnd implements Iperf3Conn {
  constructor(readonly rx: Half, readonly tx: Half) {}
  receive(max: number) {
    return this.rx.receive(max);
  }
  write(data: Uint8Array) {
    return this.tx.write(data);
  }
  shutdown(_how: "write") {
    this.tx.end();
  }
  close() {
    this.tx.end();
  }
  abort() {
    this.tx.kill();
    this.rx.kill();
  }
  info() {
    return { retransmits: 0 };
  }
}

function pipe(limit = 256 * 1024): [PipeEnd, PipeEnd] {
  const a = new Half(limit);
  const b = new Half(limit);
  return [new PipeEnd(a, b), new PipeEnd(b, a)];
}

/** A client-side connect function that hands each server end to `server.handle`. */
function connector(server: Iperf3Server) {
  return () => {
    const [client, srv] = pipe();
    void server.handle(srv);
    return Promise.resolve(client as Iperf3Conn);
  };
}

function serverWithReports(): { server: Iperf3Server; reports: Promise<Iperf3TestReport>[] } {
  const resolvers: Array<(r: Iperf3TestReport) => void> = [];
  const reports = Array.from(
    { length: 4 },
    () => new Promise<Iperf3TestReport>((r) => resolvers.push(r)),
  );
  let i = 0;
  const server = new Iperf3Server({ onTest: (r) => resolvers[i++](r), setupTimeoutMs: 500 });
  return { server, reports };
}

describe("iperf3 protocol codec", () => {
  it("makes 37-byte cookies of [a-z2-7] ending in NUL", () => {
    const c = makeIperf3Cookie();
    assert.equal(c.length, IPERF3_COOKIE_SIZE);
    assert.equal(c[36], 0);
    assert.match(iperf3CookieText(c), /^[a-z2-7]{36}$/);
    assert.ok(iperf3CookieEquals(c, c.slice()));
    assert.ok(!iperf3CookieEquals(c, makeIperf3Cookie()));
  });

  it("encodes state bytes as signed bytes (ACCESS_DENIED is 0xff)", () => {
    assert.deepEqual(encodeIperf3State(Iperf3State.ACCESS_DENIED), Uint8Array.of(0xff));
    assert.deepEqual(encodeIperf3State(Iperf3State.SERVER_ERROR), Uint8Array.of(0xfe));
    assert.equal(decodeIperf3State(0xfe), Iperf3State.SERVER_ERROR);
    assert.equal(decodeIperf3State(16), Iperf3State.IPERF_DONE);
  });

  it("prefixes JSON with its big-endian length and reads it back across chunk boundaries", async () => {
    const msg = encodeIperf3Json({ tcp: true, time: 2 });
    const text = '{"tcp":true,"time":2}';
    assert.deepEqual([...msg.subarray(0, 4)], [0, 0, 0, text.length]);
    assert.equal(new TextDecoder().decode(msg.subarray(4)), text);
    const [a, b] = pipe();
    // One byte at a time, then the next unit right behind it.
    void (async () => {
      for (const byte of msg) await a.write(Uint8Array.of(byte));
      await a.write(encodeIperf3State(Iperf3State.TEST_END));
    })();
    const r = new Iperf3Reader(b);
    assert.deepEqual(await r.readJson("params"), { tcp: true, time: 2 });
    assert.equal(await r.readState(), Iperf3State.TEST_END);
  });

  it("refuses a JSON length of 0 or over the limit, and text that is not an object", async () => {
    for (const bytes of [[0, 0, 0, 0], [0, 1, 0, 1]]) {
      const [a, b] = pipe();
      await a.write(Uint8Array.from(bytes));
      await assert.rejects(new Iperf3Reader(b).readJson("params"), /outside 1\.\.65536/);
    }
    const [a, b] = pipe();
    const t = new TextEncoder().encode("[1]");
    await a.write(Uint8Array.of(0, 0, 0, t.length, ...t));
    await assert.rejects(new Iperf3Reader(b).readJson("params"), /not a JSON object/);
    assert.throws(() => encodeIperf3Json({ s: "x".repeat(IPERF3_MAX_JSON_BYTES) }), RangeError);
  });

  it("reports a stream that ends inside a unit", async () => {
    const [a, b] = pipe();
    await a.write(Uint8Array.of(0, 0));
    a.close();
    await assert.rejects(new Iperf3Reader(b).readJson("params"), Iperf3Error);
  });

  it("decodes the parameters iperf3 3.12 sends, and refuses what it cannot run", () => {
    const wire = JSON.parse(
      '{"tcp":true,"omit":0,"time":1,"num":0,"blockcount":0,"parallel":1,"reverse":true,' +
        '"len":131072,"pacing_timer":1000,"client_version":"3.12"}',
    );
    assert.deepEqual(decodeIperf3Params(wire), {
      time: 1,
      bytes: 0,
      blocks: 0,
      parallel: 1,
      reverse: true,
      len: 131072,
      omit: 0,
    });
    const p = decodeIperf3Params(wire);
    assert.ok(typeof p !== "string");
    assert.deepEqual(decodeIperf3Params(encodeIperf3Params(p)), p);
    assert.match(decodeIperf3Params({ ...wire, udp: true }) as string, /UDP/);
    assert.match(decodeIperf3Params({ ...wire, parallel: 0 }) as string, /parallel.*got 0/);
    assert.match(decodeIperf3Params({ ...wire, len: "big" }) as string, /len.*"big"/);
    assert.match(decodeIperf3Params({ ...wire, time: 0 }) as string, /no bound/);
  });

  it("reads iperf3's unsigned -1 retransmits back as -1", () => {
    const r = decodeIperf3Results(JSON.parse(
      '{"cpu_util_total":2.4,"sender_has_retransmits":18446744073709551615,' +
        '"congestion_used":"bbr","streams":[{"id":1,"bytes":131072,' +
        '"retransmits":18446744073709551615,"jitter":0,"errors":0,"packets":0,' +
        '"start_time":0,"end_time":0.005102}]}',
    ));
    assert.deepEqual(r, {
      senderHasRetransmits: false,
      congestionUsed: "bbr",
      streams: [{ id: 1, bytes: 131072, retransmits: -1, startTime: 0, endTime: 0.005102 }],
    });
    const back = decodeIperf3Results(encodeIperf3Results(r as Exclude<typeof r, string>));
    assert.deepEqual(back, r);
    assert.match(decodeIperf3Results({}) as string, /no streams/);
  });

  it("numbers streams 1, 3, 4, ... as iperf3 does", () => {
    assert.deepEqual([0, 1, 2, 3].map(iperf3StreamId), [1, 3, 4, 5]);
  });
});

describe("iperf3 server and client state machines", () => {
  it("runs a byte-bounded forward test; both sides count the same bytes", async () => {
    const { server, reports } = serverWithReports();
    const r = await runIperf3Client(connector(server), { bytes: 1_000_000, len: 65536 });
    const report = await reports[0];
    assert.equal(report.error, undefined);
    assert.equal(r.bytes, 1_000_000);
    assert.equal(report.bytes, 1_000_000);
    assert.equal(r.serverBytes, 1_000_000);
    assert.equal(report.clientResults?.streams[0].bytes, 1_000_000);
    assert.equal(report.reverse, false);
  });

  it("runs a byte-bounded reverse test with parallel streams", async () => {
    const { server, reports } = serverWithReports();
    const r = await runIperf3Client(connector(server), {
      bytes: 3_000_000,
      reverse: true,
      parallel: 3,
    });
    const report = await reports[0];
    assert.equal(report.error, undefined);
    assert.equal(report.reverse, true);
    assert.deepEqual(report.streams.map((s) => s.id), [1, 3, 4]);
    assert.ok(r.bytes >= 3_000_000, `client received ${r.bytes}`);
    assert.equal(r.serverBytes, report.bytes);
    assert.equal(report.bytes, 3_000_000);
  });

  it("runs a timed test and ends it with TEST_END", async () => {
    const { server, reports } = serverWithReports();
    const r = await runIperf3Client(connector(server), { time: 1 });
    const report = await reports[0];
    assert.equal(report.error, undefined);
    assert.ok(r.bytes > 0);
    assert.ok(report.bytes > 0 && report.bytes <= r.bytes, `${report.bytes} of ${r.bytes}`);
    assert.equal(r.serverBytes, report.bytes);
  });

  it("denies a second client while a test runs (ACCESS_DENIED)", async () => {
    const { server, reports } = serverWithReports();
    const first = runIperf3Client(connector(server), { time: 1 });
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(server.busy);
    await assert.rejects(
      runIperf3Client(connector(server), { time: 1 }),
      /ACCESS_DENIED/,
    );
    await first;
    assert.equal((await reports[0]).error, undefined);
    assert.ok(!server.busy);
  });

  it("answers parameters it cannot run with SERVER_ERROR and reports why", async () => {
    const { server, reports } = serverWithReports();
    const [client, srv] = pipe();
    void server.handle(srv);
    await client.write(makeIperf3Cookie());
    const r = new Iperf3Reader(client);
    assert.equal(await r.readState(), Iperf3State.PARAM_EXCHANGE);
    await client.write(encodeIperf3Json({ tcp: false, udp: true, time: 1 }));
    assert.equal(await r.readState(), Iperf3State.SERVER_ERROR);
    await r.readExact(8, "errors");
    assert.match((await reports[0]).error ?? "", /UDP tests are not supported/);
    assert.ok(!server.busy);
  });

  it("gives up on a client that never opens its data streams", async () => {
    const { server, reports } = serverWithReports();
    const [client, srv] = pipe();
    void server.handle(srv);
    await client.write(makeIperf3Cookie());
    const r = new Iperf3Reader(client);
    assert.equal(await r.readState(), Iperf3State.PARAM_EXCHANGE);
    await client.write(encodeIperf3Json({ tcp: true, time: 1, parallel: 2 }));
    assert.equal(await r.readState(), Iperf3State.CREATE_STREAMS);
    assert.match((await reports[0]).error ?? "", /timed out after 500 ms waiting for 2 data/);
    assert.ok(!server.busy);
  });

  it("aborts a timed test whose client never sends TEST_END", async () => {
    const { server, reports } = serverWithReports();
    const [client, srv] = pipe();
    void server.handle(srv);
    const cookie = makeIperf3Cookie();
    await client.write(cookie);
    const r = new Iperf3Reader(client);
    assert.equal(await r.readState(), Iperf3State.PARAM_EXCHANGE);
    await client.write(encodeIperf3Json({ tcp: true, time: 1 }));
    assert.equal(await r.readState(), Iperf3State.CREATE_STREAMS);
    const [data, dataSrv] = pipe();
    void server.handle(dataSrv);
    await data.write(cookie);
    assert.equal(await r.readState(), Iperf3State.TEST_START);
    assert.equal(await r.readState(), Iperf3State.TEST_RUNNING);
    // Time 1 s plus 3 × the 500 ms setup timeout, then the control connection is reset.
    const report = await reports[0];
    assert.match(report.error ?? "", /ECONNRESET|closed/);
    assert.ok(!server.busy);
  });

  it("ends a test when the client terminates (CLIENT_TERMINATE)", async () => {
    const { server, reports } = serverWithReports();
    const [client, srv] = pipe();
    void server.handle(srv);
    const cookie = makeIperf3Cookie();
    await client.write(cookie);
    const r = new Iperf3Reader(client);
    assert.equal(await r.readState(), Iperf3State.PARAM_EXCHANGE);
    await client.write(encodeIperf3Json({ tcp: true, time: 5 }));
    assert.equal(await r.readState(), Iperf3State.CREATE_STREAMS);
    const [data, dataSrv] = pipe();
    void server.handle(dataSrv);
    await data.write(cookie);
    assert.equal(await r.readState(), Iperf3State.TEST_START);
    assert.equal(await r.readState(), Iperf3State.TEST_RUNNING);
    await data.write(new Uint8Array(1000));
    await new Promise((res) => setTimeout(res, 10));
    await client.write(encodeIperf3State(Iperf3State.CLIENT_TERMINATE));
    const report = await reports[0];
    assert.match(report.error ?? "", /client terminated/);
    assert.equal(report.bytes, 1000);
  });
});

describe("iperf3 over two stacks in one process (TcpSocket, real TCP)", () => {
  /** Two sessions whose tunnels deliver to each other a macrotask later. */
  function twoSessions(): [Session, Session] {
    const mk = (id: string, ip: string, mac: string) =>
      new Session({
        id,
        token: id,
        clock: new SystemClock(),
        stack: {
          mac: parseMacAddress(mac),
          ipv4: { address: parseIpv4Address(ip), prefixLength: 24 },
          mtu: 1500,
        },
      });
    const a = mk("a", "10.0.2.2", "02:00:00:00:00:0a");
    const b = mk("b", "10.0.2.15", "02:00:00:00:00:0b");
    const wire = (from: Session, to: Session) =>
      from.attachTunnel({
        description: `to ${to.id}`,
        send: (frames) => {
          const copies = frames.map((f) => f.slice());
          setTimeout(() => to.input(copies), 0);
        },
        close: () => {},
      });
    wire(a, b);
    wire(b, a);
    return [a, b];
  }

  for (const reverse of [false, true]) {
    it(`moves 2 MB ${reverse ? "server to client (-R)" : "client to server"}`, async () => {
      const [a, b] = twoSessions();
      let resolve!: (r: Iperf3TestReport) => void;
      const report = new Promise<Iperf3TestReport>((r) => (resolve = r));
      const server = Iperf3Server.listen(a, { onTest: resolve });
      try {
        const r = await iperf3Client(b, { address: "10.0.2.2", bytes: 2_000_000, reverse });
        const rep = await report;
        assert.equal(rep.error, undefined);
        assert.equal(rep.reverse, reverse);
        if (reverse) {
          assert.equal(rep.bytes, 2_000_000);
          assert.equal(r.bytes, 2_000_000);
        } else {
          // TEST_END goes out once the last byte is queued, as in iperf3: the server counts
          // what it read before TEST_END arrived, which may leave the tail in flight.
          assert.equal(r.bytes, 2_000_000);
          assert.ok(rep.bytes > 0 && rep.bytes <= 2_000_000, `server read ${rep.bytes}`);
        }
        assert.equal(r.serverBytes, rep.bytes);
      } finally {
        server.close();
        a.close();
        b.close();
      }
    });
  }
});
