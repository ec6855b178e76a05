import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fixedBody, fixedResponse } from "./fixed_response.ts";

describe("fixedResponse", () => {
  it("is an ordinary Response whose bytes fixedBody gives until its body is read", async () => {
    const res = fixedResponse("héllo", { status: 201, headers: { "x-a": "1" } });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("x-a"), "1");
    assert.deepEqual(fixedBody(res), new TextEncoder().encode("héllo"));
    assert.equal(await res.text(), "héllo");
    assert.equal(fixedBody(res), undefined, "read: nothing to take");
    const bytes = new Uint8Array([1, 2, 3]);
    assert.equal(fixedBody(fixedResponse(bytes, {})), bytes);
    assert.equal(fixedBody(new Response("other")), undefined);
  });
});
