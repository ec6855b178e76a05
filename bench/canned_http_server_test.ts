import { test } from "node:test";
import assert from "node:assert/strict";
import { serveCanned } from "./canned_http_server.ts";
import { echoRegistry, sessionClient } from "./api_bench.ts";
import { serveDeno } from "../src/http/serve_deno.ts";

/** What a client sees of a response, but the date and the digits of the session count. */
async function shape(res: Response): Promise<string> {
  const headers = [...res.headers].filter(([k]) => k !== "date").map(([k, v]) => `${k}: ${v}`);
  const body = (await res.text()).replace(/"sessions":\d/, '"sessions":N');
  return `${res.status} ${headers.sort().join("; ")} | ${body}`;
}

test("the api bench's canned server answers healthz, send and recv as netisle's server does", async () => {
  const { registry, sessions } = echoRegistry(1);
  let url = "";
  const ready = Promise.withResolvers<void>();
  const server = serveDeno({
    registry,
    requestLog: false,
    hostname: "127.0.0.1",
    port: 0,
    onListen: (u) => {
      url = u;
      ready.resolve();
    },
  });
  const canned = serveCanned();
  try {
    await ready.promise;
    const real = sessionClient(url, sessions[0]);
    const id = await real.create();
    await real.connect(id);
    const auth = { authorization: `Bearer ${sessions[0].token}` };
    const base = (u: string) => `${u}/v1/sessions/${sessions[0].id}/sockets/${id}`;
    const requests = [
      (u: string) => fetch(`${u}/healthz`),
      (u: string) =>
        fetch(`${base(u)}/send`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/octet-stream" },
          body: new Uint8Array(64).fill(0x78),
        }),
      (u: string) =>
        fetch(`${base(u)}/recv?maxBytes=64&timeoutMs=10000`, { method: "POST", headers: auth }),
    ];
    for (const request of requests) {
      assert.equal(await shape(await request(canned.url)), await shape(await request(url)));
    }
    await real.close(id);
  } finally {
    canned.close();
    await server.shutdown();
    registry.close();
  }
});
