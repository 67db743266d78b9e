#!/usr/bin/env bash
# The whole pipeline end to end on this machine: installs what is missing,
# builds tally, starts tally-devbroker and a throwaway PostgreSQL, generates
# warehouse readings with tally-gen (every input shape, some late and some
# malformed), runs tally-ingest, tally-aggregate and tally-store, waits
# until the rollups are in PostgreSQL and equal tally-gen's own
# computation, shows them with SQL, then stops everything it started.
#
# Environment: DEMO_DEVICES (default 500), DEMO_DURATION (event time,
# default 180s), TALLY_BIN (use an existing build, skip install and build).
set -euo pipefail
cd "$(dirname "$0")/.."
TALLY_SRC=$(pwd)
if [ -z "${TALLY_BIN:-}" ]; then
        bash scripts/install-deps.sh
        cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
        cmake --build build -j "$(nproc)" >/dev/null
        TALLY_BIN=$TALLY_SRC/build/bin
fi
export TALLY_BIN TALLY_SRC
. tests/lib/pg.sh
. tests/lib/broker.sh
. tests/lib/pipeline.sh
cleanup() {
        daemon_stop_all >/dev/null 2>&1 || true
        broker_stop >/dev/null 2>&1 || true
        pg_stop >/dev/null 2>&1 || true
        rm -rf "$PIPE_DIR"
}
trap cleanup EXIT

echo "== starting tally-devbroker and PostgreSQL"
pg_start
broker_start
pipeline_env
echo "   brokers: $TALLY_BROKERS"

echo "== generating readings with tally-gen"
"$TALLY_BIN/tally-gen" --seed 7 --devices "${DEMO_DEVICES:-500}" --sites 5 \
        --duration "${DEMO_DURATION:-180s}" --shapes all --late-share 0.005 \
        --malformed-share 0.01 --expect "$PIPE_DIR/expected.tsv" \
        --expect-dlq "$PIPE_DIR/expected-dlq.tsv" 2>"$PIPE_DIR/gen.log"
summary=$(grep 'msg=summary' "$PIPE_DIR/gen.log")
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$summary"; }
echo "   $(field messages) messages, $(field reports) reports, $(field points) points"

echo "== running tally-ingest, tally-aggregate, tally-store"
daemon_start ingest --idle-timeout 500ms
daemon_start aggregate
daemon_start store
start=$(date +%s)
if ! pipeline_wait "$PIPE_DIR/expected.tsv" 180; then
        pipeline_diff "$PIPE_DIR/expected.tsv"
        exit 1
fi
echo "   all rollups in PostgreSQL and equal to tally-gen's computation after $(( $(date +%s) - start ))s"

echo "== SELECT ... FROM tally.rollup_1m"
psql -X "$TALLY_PG" -P pager=off -c "
SELECT site, device, metric, bucket, count, round(mean::numeric, 3) AS mean,
       min, max
FROM tally.rollup_1m
WHERE device = (SELECT min(device) FROM tally.rollup_1m)
ORDER BY metric, bucket LIMIT 12;"
rows_1m=$(psql -XAtq "$TALLY_PG" -c "SELECT count(*) FROM tally.rollup_1m")
rows_1h=$(psql -XAtq "$TALLY_PG" -c "SELECT count(*) FROM tally.rollup_1h")
rejected=$(dlq_reasons | awk '{n += $2} END {print n + 0}')
daemon_stop_all
echo "reports=$(field reports) points=$(field points) rejected=$rejected rollup_rows_1m=$rows_1m rollup_rows_1h=$rows_1h"
