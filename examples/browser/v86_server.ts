/**
 * The netisle server (as examples/deno/server.ts: the same environment
 * variables) that also serves the browser VM page on its own origin:
 *
 *   scripts/build_v86_guest.sh               # once: the guest, into /var/cache/netisle-v86
 *   deno run -A examples/browser/v86_server.ts    # (deno task v86)
 *   # open http://127.0.0.1:8787/v86/
 *
 * `/v86/` is examples/browser/v86.html, `/v86/libv86.js` and `/v86/v86.wasm`
 * come from the `v86` npm package, `/v86/guest/*` from `NETISLE_V86_DIR`
 * (default /var/cache/netisle-v86). Everything else is the API.
 *
 * @module
 */

import { createApp } from "../../src/http/app.ts";
import { serveDenoFetch } from "../../src/http/serve_deno.ts";
import { SessionRegistry, SystemClock } from "../../src/session/mod.ts";
import { listeningLine, readServerConfig } from "../server_config.ts";

const here = new URL(".", import.meta.url).pathname;
const root = new URL("../../", import.meta.url).pathname;

const FILES: Record<string, { path: string; type: string }> = {
  "": { path: `${here}v86.html`, type: "text/html; charset=utf-8" },
  "v86.js": { path: `${here}v86.js`, type: "text/javascript" },
  "v86.css": { path: `${here}v86.css`, type: "text/css" },
  "libv86.js": { path: `${root}node_modules/v86/build/libv86.js`, type: "text/javascript" },
  "v86.wasm": { path: `${root}node_modules/v86/build/v86.wasm`, type: "application/wasm" },
};
const GUEST = new Set(["bzImage", "initrd.img", "seabios.bin", "vgabios.bin"]);

/**
 * The page's files under `/v86/`, or undefined for any other path.
 *
 * @example
 * ```ts
 * const res = await v86Files(new Request("http://x/v86/"), "/var/cache/netisle-v86");
 * ```
 */
export async function v86Files(req: Request, guestDir: string): Promise<Response | undefined> {
  const path = new URL(req.url).pathname;
  if (path === "/v86") return Response.redirect(new URL("/v86/", req.url), 308);
  if (!path.startsWith("/v86/") || (req.method !== "GET" && req.method !== "HEAD")) return;
  const name = path.slice("/v86/".length);
  let file = FILES[name];
  if (!file && name.startsWith("guest/") && GUEST.has(name.slice(6))) {
    file = { path: `${guestDir}/${name.slice(6)}`, type: "application/octet-stream" };
  }
  if (!file) return new Response("not found\n", { status: 404 });
  try {
    const f = await Deno.open(file.path);
    const { size } = await f.stat();
    return new Response(req.method === "HEAD" ? null : f.readable, {
      headers: { "content-type": file.type, "content-length": String(size) },
    });
  } catch {
    return new Response(
      name.startsWith("guest/")
        ? `the guest image is missing in ${guestDir}: run scripts/build_v86_guest.sh\n`
        : "not found\n",
      { status: 404 },
    );
  }
}

if (import.meta.main) {
  const config = readServerConfig(Deno.env.toObject());
  if (typeof config === "string") {
    console.error(`netisle: ${config}`);
    Deno.exit(2);
  }
  const guestDir = Deno.env.get("NETISLE_V86_DIR") || "/var/cache/netisle-v86";
  // v86's NE2000 drops what overflows its 16 KiB receive buffer: pace what the stack sends
  // (the default; said here because this server depends on it).
  const registry = new SessionRegistry({ clock: new SystemClock(), tcp: { pacing: true } });
  registry.startSweeping();
  const server = serveDenoFetch(
    {
      hostname: config.hostname,
      port: config.port,
      onListen: (url) => {
        console.log(listeningLine(url, "Deno", config));
        console.log(`netisle: the browser VM page is ${url}/v86/`);
      },
    },
    (upgradeWebSocket) => {
      const app = createApp({ ...config, registry, upgradeWebSocket });
      return async (req: Request, info?: unknown) =>
        (await v86Files(req, guestDir)) ?? await app.fetch(req, info);
    },
  );
  const stop = () => {
    registry.close();
    void server.shutdown();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
}
