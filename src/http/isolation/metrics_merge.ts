/**
 * Adds up Prometheus text documents (the front door's and every session
 * worker's) into one, family by family and series by series. Gauges named in
 * `maxFamilies` take the largest value instead of the sum.
 *
 * @module
 */

/** One family of a parsed document. */
export interface ParsedFamily {
  name: string;
  type: string;
  /** The `# HELP` text, as escaped in the document. */
  help: string;
  /** Value by the series' label text (`{a="b"}` or empty). */
  samples: Map<string, number>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$/;

/**
 * Parses the text format as netisle writes it (HELP and TYPE before the
 * samples of each family). Lines it does not understand are skipped.
 *
 * @example
 * ```ts
 * parseMetrics("# TYPE x counter\nx 3\n").get("x")?.samples.get(""); // 3
 * ```
 */
export function parseMetrics(text: string): Map<string, ParsedFamily> {
  const families = new Map<string, ParsedFamily>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: "untyped", help: "", samples: new Map() };
      families.set(name, f);
    }
    return f;
  };
  for (const line of text.split("\n")) {
    if (line.startsWith("# HELP ")) {
      const rest = line.slice(7);
      const sp = rest.indexOf(" ");
      if (sp > 0) family(rest.slice(0, sp)).help = rest.slice(sp + 1);
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ");
      if (name && type) family(name).type = type;
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (Number.isNaN(value)) continue;
    family(m[1]).samples.set(m[2] ?? "", value);
  }
  return families;
}

/** Options of {@linkcode mergeMetrics}. */
export interface MergeOptions {
  /** Families whose series take the maximum, not the sum. */
  maxFamilies?: ReadonlySet<string>;
  /** Keep only counters (what survives a deleted session). */
  countersOnly?: boolean;
  /** Families to leave out of `from`. */
  omit?: ReadonlySet<string>;
}

/** Adds the families of `from` into `into` (sums, or maxima for `maxFamilies`). */
export function mergeMetrics(
  into: Map<string, ParsedFamily>,
  from: Map<string, ParsedFamily>,
  options: MergeOptions = {},
): void {
  for (const f of from.values()) {
    if (options.omit?.has(f.name)) continue;
    if (options.countersOnly && f.type !== "counter") continue;
    let t = into.get(f.name);
    if (!t) {
      t = { name: f.name, type: f.type, help: f.help, samples: new Map() };
      into.set(f.name, t);
    }
    const max = options.maxFamilies?.has(f.name) ?? false;
    for (const [labels, v] of f.samples) {
      const old = t.samples.get(labels);
      t.samples.set(labels, old === undefined ? v : max ? Math.max(old, v) : old + v);
    }
  }
}

/** Renders parsed families back to the text format. */
export function renderParsedMetrics(families: Map<string, ParsedFamily>): string {
  const lines: string[] = [];
  for (const f of families.values()) {
    if (f.help) lines.push(`# HELP ${f.name} ${f.help}`);
    lines.push(`# TYPE ${f.name} ${f.type}`);
    for (const [labels, v] of f.samples) lines.push(`${f.name}${labels} ${v}`);
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}
