/**
 * Validation failures as 400 problems: the detail names the first failing
 * field, `issues` lists zod's issues. {@linkcode validationHook} is the
 * `defaultHook` of the app's `OpenAPIHono` (it sees every path, query and
 * JSON body the routes declare); {@linkcode validate} serves the pieces
 * that validate by hand (session authentication, the isolation front door).
 *
 * @module
 */

import type { z } from "zod";
import { HttpProblem } from "./problem.ts";

/** Where a validated value came from, as the 400's detail names it. */
export type InputPlace = "path" | "query" | "request body";

/**
 * zod's issues as the 400 problem that names the first failing field.
 *
 * @example
 * ```ts
 * const r = ConnectBodySchema.safeParse({ port: 80 });
 * if (!r.success) throw invalidInput("request body", r.error.issues); // "invalid request body: address: ..."
 * ```
 */
export function invalidInput(where: InputPlace, issues: readonly z.core.$ZodIssue[]): HttpProblem {
  const first = issues[0];
  const field = first && first.path.length > 0 ? first.path.join(".") : "(root)";
  return new HttpProblem("EINVAL", `invalid ${where}: ${field}: ${first?.message ?? "invalid"}`, {
    issues: [...issues],
  });
}

/**
 * Parses `input` with `schema`, or throws a 400 problem whose detail names
 * the first failing field and whose `issues` list zod's issues.
 *
 * @example
 * ```ts
 * const { sid } = validate(SessionParamsSchema, { sid: c.req.param("sid") }, "path");
 * ```
 */
export function validate<T extends z.ZodType>(
  schema: T,
  input: unknown,
  where: InputPlace,
): z.output<T> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  throw invalidInput(where, r.error.issues);
}

const PLACES: Record<string, InputPlace> = {
  param: "path",
  query: "query",
  json: "request body",
};

/**
 * The `defaultHook` of the app's `OpenAPIHono`: a failed validation of a
 * route's path parameters, query or JSON body throws the 400 problem (to the
 * app's `onError`); a successful one lets the handler run.
 *
 * @example
 * ```ts
 * const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
 * ```
 */
export function validationHook(
  result: { success: true; target: string } | {
    success: false;
    target: string;
    error: z.ZodError;
  },
): void {
  if (result.success) return;
  throw invalidInput(PLACES[result.target] ?? "request body", result.error.issues);
}
