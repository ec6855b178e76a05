import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  decodeWispPacket,
  encodeWispClose,
  encodeWispConnect,
  encodeWispContinue,
  encodeWispData,
  encodeWispInfo,
  encodeWispPassword,
  WISP_DROP_REASONS,
  WispCloseReason,
  WispExtensionId,
  wispPasswordCandidates,
  WispStreamType,
} from "./wisp.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");

describe("Wisp packets (Wisp v1.2 'Packet format': u8 type, u32 LE stream id, payload)", () => {
  it("encodes CONNECT as type 0x01, stream id little-endian, u8 stream type, u16 LE port, hostname", () => {
    assert.equal(
      hex(encodeWispConnect(0x01020304, WispStreamType.UDP, 0x1234, "ab")),
      "01 04 03 02 01 02 34 12 61 62",
    );
  });

  it("encodes DATA, CONTINUE (u32 LE) and CLOSE (u8 reason)", () => {
    assert.equal(hex(encodeWispData(7, new Uint8Array([9, 8]))), "02 07 00 00 00 09 08");
    assert.equal(hex(encodeWispContinue(0, 128)), "03 00 00 00 00 80 00 00 00");
    assert.equal(hex(encodeWispClose(7, WispCloseReason.BLOCKED)), "04 07 00 00 00 48");
  });

  it("encodes INFO (v2) as version, then u8 id, u32 LE length, data per extension", () => {
    const info = encodeWispInfo(2, 0, [
      { id: WispExtensionId.UDP, data: new Uint8Array(0) },
      { id: WispExtensionId.PASSWORD, data: new Uint8Array([1]) },
    ]);
    assert.equal(hex(info), "05 00 00 00 00 02 00 01 00 00 00 00 02 01 00 00 00 01");
  });

  it("decodes what it encodes", () => {
    const c = decodeWispPacket(encodeWispConnect(9, 1, 80, "10.0.2.15"));
    assert.deepEqual(c, {
      ok: true,
      value: { type: "connect", streamId: 9, streamType: 1, port: 80, hostname: "10.0.2.15" },
    });
    const d = decodeWispPacket(encodeWispData(0xffffffff, new Uint8Array([1, 2, 3])));
    assert.ok(d.ok && d.value.type === "data");
    assert.equal(d.value.streamId, 0xffffffff);
    assert.deepEqual([...d.value.payload], [1, 2, 3]);
    assert.deepEqual(decodeWispPacket(encodeWispContinue(3, 0xfffffffe)), {
      ok: true,
      value: { type: "continue", streamId: 3, bufferRemaining: 0xfffffffe },
    });
    assert.deepEqual(decodeWispPacket(encodeWispClose(3, 0x44)), {
      ok: true,
      value: { type: "close", streamId: 3, reason: 0x44 },
    });
    const i = decodeWispPacket(
      encodeWispInfo(2, 0, [{ id: 4, data: new TextEncoder().encode("hi") }]),
    );
    assert.ok(i.ok && i.value.type === "info");
    assert.equal(i.value.major, 2);
    assert.equal(i.value.extensions.length, 1);
    assert.equal(new TextDecoder().decode(i.value.extensions[0].data), "hi");
  });

  it("answers a reason, never an exception, for hostile bytes", () => {
    const cases: Array<[number[], string]> = [
      [[1, 0, 0, 0], "wisp_truncated"],
      [[1, 1, 0, 0, 0, 1, 80], "wisp_connect_truncated"],
      [[1, 1, 0, 0, 0, 1, 80, 0, 0xff, 0xfe], "wisp_hostname_not_utf8"],
      [[3, 1, 0, 0, 0, 1, 2, 3], "wisp_continue_truncated"],
      [[4, 1, 0, 0, 0], "wisp_close_truncated"],
      [[5, 0, 0, 0, 0, 2], "wisp_info_truncated"],
      [[5, 0, 0, 0, 0, 2, 0, 1, 0xff, 0, 0, 0], "wisp_extension_truncated"],
      [[5, 0, 0, 0, 0, 2, 0, 1, 0], "wisp_extension_truncated"],
      [[9, 0, 0, 0, 0], "wisp_unknown_type"],
    ];
    for (const [bytes, reason] of cases) {
      assert.deepEqual(decodeWispPacket(new Uint8Array(bytes)), { ok: false, reason }, `${bytes}`);
      assert.ok(WISP_DROP_REASONS.includes(reason), reason);
    }
    const long = new Uint8Array(5 + 3 + 256);
    long[0] = 1;
    assert.deepEqual(decodeWispPacket(long), { ok: false, reason: "wisp_hostname_too_long" });
    // Random bytes: a result every time.
    let seed = 1;
    for (let n = 0; n < 2000; n++) {
      const b = new Uint8Array(n % 40);
      for (let k = 0; k < b.length; k++) b[k] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      if (b.length > 0) b[0] = (b[0] % 6) + 1;
      const r = decodeWispPacket(b);
      assert.ok(r.ok || WISP_DROP_REASONS.includes(r.reason), JSON.stringify(r));
    }
  });

  it("refuses to encode a hostname over 255 bytes or a port outside 0-65535", () => {
    assert.throws(() => encodeWispConnect(1, 1, 80, "a".repeat(256)), RangeError);
    assert.throws(() => encodeWispConnect(1, 1, 65536, "a"), RangeError);
  });
});

describe("Wisp v2 password extension metadata", () => {
  it("reads draft 6's layout (u8 username length, username, password)", () => {
    const got = wispPasswordCandidates(encodeWispPassword("netisle", "s3cret-token"));
    assert.ok(got.some((c) => c.username === "netisle" && c.password === "s3cret-token"));
  });

  it("reads wisp-js 0.5's layout (u8 username length, u16 LE password length, both strings)", () => {
    const u = new TextEncoder().encode("me");
    const p = new TextEncoder().encode("tok");
    const d = new Uint8Array([u.length, p.length, 0, ...u, ...p]);
    const got = wispPasswordCandidates(d);
    assert.ok(got.some((c) => c.username === "me" && c.password === "tok"));
  });

  it("gives no candidate for empty or inconsistent metadata", () => {
    assert.deepEqual(wispPasswordCandidates(new Uint8Array(0)), []);
    assert.deepEqual(wispPasswordCandidates(new Uint8Array([9, 1])), []);
  });
});
