/**
 * Runs the SDK scenario (tests/_sdk_scenario.mjs) on the TypeScript sources
 * of src/client, under Deno or Bun, with the runtime's own WebSocket:
 *
 *   deno run -A tests/_sdk_run.ts SERVER SESSION_ID TOKEN
 *   bun tests/_sdk_run.ts SERVER SESSION_ID TOKEN
 *
 * @module
 */

import process from "node:process";
import * as sdk from "../src/client/mod.ts";
import { runScenario } from "./_sdk_scenario.mjs";

const [server, id, token] = process.argv.slice(2);
await runScenario(sdk, { server, id, token, log: (line: string) => console.log(line) });
