import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mergeMetrics, parseMetrics, renderParsedMetrics } from "./metrics_merge.ts";

const worker1 = `# HELP netisle_frames_total Frames.
# TYPE netisle_frames_total counter
netisle_frames_total{direction="rx"} 3
netisle_frames_total{direction="tx"} 4
# HELP netisle_core_lock_max_held_seconds Longest.
# TYPE netisle_core_lock_max_held_seconds gauge
netisle_core_lock_max_held_seconds 0.5
# TYPE netisle_sockets gauge
netisle_sockets{protocol="tcp"} 2
`;
const worker2 = `# HELP netisle_frames_total Frames.
# TYPE netisle_frames_total counter
netisle_frames_total{direction="rx"} 10
# HELP netisle_core_lock_max_held_seconds Longest.
# TYPE netisle_core_lock_max_held_seconds gauge
netisle_core_lock_max_held_seconds 0.25
not a sample line
# TYPE netisle_sockets gauge
netisle_sockets{protocol="tcp"} 1
`;

describe("mergeMetrics", () => {
  it("sums series across documents, takes maxima where asked, skips what it cannot parse", () => {
    const total = parseMetrics("");
    const max = new Set(["netisle_core_lock_max_held_seconds"]);
    mergeMetrics(total, parseMetrics(worker1), { maxFamilies: max });
    mergeMetrics(total, parseMetrics(worker2), { maxFamilies: max });
    assert.equal(
      renderParsedMetrics(total),
      `# HELP netisle_frames_total Frames.
# TYPE netisle_frames_total counter
netisle_frames_total{direction="rx"} 13
netisle_frames_total{direction="tx"} 4
# HELP netisle_core_lock_max_held_seconds Longest.
# TYPE netisle_core_lock_max_held_seconds gauge
netisle_core_lock_max_held_seconds 0.5
# TYPE netisle_sockets gauge
netisle_sockets{protocol="tcp"} 3
`,
    );
  });

  it("keeps only counters of a retired worker and leaves out omitted families", () => {
    const retired = parseMetrics("");
    mergeMetrics(retired, parseMetrics(worker1), {
      countersOnly: true,
      omit: new Set(["netisle_sockets"]),
    });
    assert.deepEqual([...retired.keys()], ["netisle_frames_total"]);
  });
});
