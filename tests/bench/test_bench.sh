#!/usr/bin/env bash
# bench/run still runs: a --quick run (2,000 devices) of the primitives,
# end to end and each stage alone writes every figure those sections
# promise, with the end-to-end rows checked correct against tally-gen's
# expected rollups. No figure is compared with a target here (speed is
# for the benchmark itself, on a quiet machine: docs/performance.md).
set -euo pipefail
src=${TALLY_SRC:?TALLY_SRC: the source tree}
bin=${TALLY_BIN:?TALLY_BIN: the build bin/ directory}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if ! python3 "$src/bench/run" --bin "$bin" --quick \
        --only primitives,e2e,stages --out "$out/r.json" >"$out/log" 2>&1; then
        echo "FAIL: bench/run exited non-zero; its last lines:"
        tail -30 "$out/log"
        exit 1
fi
grep -q "^end to end .*rows correct: True" "$out/log" ||
        { echo "FAIL: no end-to-end row in the table"; tail -30 "$out/log"; exit 1; }

python3 - "$out/r.json" <<'PY'
import json, sys

R = json.load(open(sys.argv[1]))
bad = []


def need(path, ok=lambda v: isinstance(v, (int, float)) and v > 0):
    v = R
    for k in path.split("/"):
        if not isinstance(v, dict) or k not in v:
            bad.append(path + ": missing")
            return
        v = v[k]
    if not ok(v):
        bad.append("%s: %r" % (path, v))


need("machine/commit", lambda v: isinstance(v, str) and len(v) == 40)
need("machine/cores")
need("machine/cpu_model", lambda v: isinstance(v, str) and v)
need("workload/devices", lambda v: v == 2000)
need("primitives/jansson/points_per_s")
need("primitives/consume_raw/msgs_per_s")
need("e2e/rows_correct", lambda v: v is True)
need("e2e/closed_rows")
need("e2e/points_per_s")
need("e2e/startup_s")
need("e2e/runs_s", lambda v: isinstance(v, list) and len(v) == 3)
for d in ("ingest", "aggregate", "store"):
    need("e2e/peak_rss_runs_mb/%s" % d, lambda v: isinstance(v, list) and len(v) == 3)
for d in ("ingest", "aggregate", "store"):
    need("e2e/daemons/%s/cpu_s" % d)
    need("e2e/daemons/%s/peak_rss_mb" % d)
for s, f in (("ingest-t1", "points_per_s"), ("ingest-t2", "points_per_s"),
             ("consume_clean", "points_per_s"), ("aggregate", "points_per_s"),
             ("store", "rows_per_s"), ("copy", "rows_per_s")):
    need("stages/%s/%s" % (s, f))
need("stages/store/rows_1m")
# the whole machine's busy cores while ingest and aggregate alone ran
# (every process)
for t in ("ingest-t1", "ingest-t2", "aggregate"):
    need("stages/%s/machine_cores_busy" % t)
need("stages/copy_store_tables/rows_per_s")
need("stages/copy_store_tables/rows",
     lambda v: isinstance(v, dict) and v.get("series", 0) > 0 and
     v.get("rollup_1m_data") == R["stages"]["store"]["rows_1m"])
# the yardsticks run in two rounds, the faster counting
need("primitives/jansson/rounds_points_per_s",
     lambda v: isinstance(v, list) and len(v) == 2 and
     max(v) == R["primitives"]["jansson"]["points_per_s"])
need("stages/consume_clean/rounds_s",
     lambda v: isinstance(v, list) and len(v) == 2 and all(x > 0 for x in v))
need("stages/copy/rounds_s",
     lambda v: isinstance(v, list) and len(v) == 2 and
     min(v) == R["stages"]["copy"]["seconds"])
if "raw" in R.get("primitives", {}).get("jansson", {}):
    bad.append("primitives/jansson/raw: a work file's path left in the JSON")
for k in ("e2e/jansson (>= 1.0)", "ingest 1 thread/jansson (>= 0.7)",
          "ingest 2 threads/1 (>= 1.3)", "aggregate/consume clean (>= 0.5)",
          "store/COPY (>= 0.5)", "store/COPY into its tables"):
    if not isinstance(R.get("ratios", {}).get(k), (int, float)):
        bad.append("ratios/" + k + ": missing")
if bad:
    print("FAIL: bench JSON:\n  " + "\n  ".join(bad))
    sys.exit(1)
print("ok: bench/run --quick: e2e %s points/s, rows correct" %
      "{:,}".format(R["e2e"]["points_per_s"]))
PY
