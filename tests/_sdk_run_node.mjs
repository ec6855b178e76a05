// Runs the SDK scenario (tests/_sdk_scenario.mjs) on Node 20 against the
// bundle (dist/netisle-client.js, `npm run build`), with the `ws` package's
// WebSocket (Node 20 has none of its own):
//
//   node tests/_sdk_run_node.mjs SERVER SESSION_ID TOKEN

import process from "node:process";
import WebSocket from "ws";
import { runScenario } from "./_sdk_scenario.mjs";

const sdk = await import(new URL("../dist/netisle-client.js", import.meta.url).href);
const [server, id, token] = process.argv.slice(2);
await runScenario(sdk, { server, id, token, WebSocket, log: (line) => console.log(line) });
