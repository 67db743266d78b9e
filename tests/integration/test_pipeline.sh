#!/usr/bin/env bash
# The whole pipeline on tally-devbroker and a throwaway PostgreSQL: a
# generated data set with every input shape, disorder, late and too-late
# readings and malformed messages; every rollup row of every resolution
# must equal tally-gen's independent computation, no other rows may exist,
# and every rejected message must be in the dead-letter topic with its
# reason. Then the same raw topic is processed again from the start by
# two copies of each daemon into an empty database: the same rows.
set -euo pipefail
: "${TALLY_BIN:?}" "${TALLY_SRC:?}"
. "$TALLY_SRC/tests/lib/pg.sh"
. "$TALLY_SRC/tests/lib/broker.sh"
. "$TALLY_SRC/tests/lib/pipeline.sh"

SEED=${TALLY_TEST_SEED:-$RANDOM}
echo "seed=$SEED"
pipeline_setup
# three resolutions at once: 5m and 1h rows are merged from the 1m rows
export TALLY_WINDOWS=1m,5m,1h
W=$PIPE_DIR

"$TALLY_BIN/tally-gen" --seed "$SEED" --devices 300 --sites 7 --duration 180s \
        --shapes all --batch 5 --late-share 0.01 --lateish-share 0.02 \
        --malformed-share 0.03 --expect "$W/expected.tsv" \
        --expect-dlq "$W/expected-dlq.tsv" 2>"$W/gen.log"
tail -n 1 "$W/gen.log"

run_once() {        # $1 = copies of each daemon, $2 = database
        local copies=$1 i
        for i in $(seq 1 "$copies"); do
                daemon_start ingest --idle-timeout 500ms --group "ingest-$2"
                daemon_start aggregate --group "aggregate-$2"
                daemon_start store --group "store-$2" --pg "$TALLY_PG"
        done
        if ! pipeline_wait "$W/expected.tsv" 150; then
                pipeline_diff "$W/expected.tsv"
                for f in "$W"/*.log; do echo "== $f"; grep -v CONFWARN "$f" | tail -n 5; done
                return 1
        fi
        # settled: nothing changes any more
        sleep 3
        [ "$(pipeline_compare "$W/expected.tsv")" = 0 ]
        daemon_stop_all
}

createdb_as() { psql -XAtq -v ON_ERROR_STOP=1 "$TALLY_PG" -c "CREATE DATABASE $1"; }

# one copy of each daemon, database run1
createdb_as run1
TALLY_PG_BASE=$TALLY_PG
export TALLY_PG="$TALLY_PG_BASE dbname=run1"
run_once 1 run1
rows1=$(psql -XAtq "$TALLY_PG" -c "SELECT count(*) FROM tally.rollup_1m")
echo "one copy: $rows1 1m rows equal the expectation"

# the clean topic decodes: every reading of it once per origin position
"$TALLY_BIN/tally-decode" --kafka >"$W/clean.jsonl"
grep -q '"kind":"progress"' "$W/clean.jsonl"
clean_readings=$(grep -o '"origin":\[[0-9]*,[0-9]*,[0-9]*\]' "$W/clean.jsonl" | sort -u | wc -l)
accepted=$(sed -n 's/.* accepted=\([0-9]*\).*/\1/p' "$W/gen.log")
too_late=$(sed -n 's/.* too_late=\([0-9]*\).*/\1/p' "$W/gen.log")
[ "$clean_readings" = $((accepted + too_late)) ] || {
        echo "clean topic holds $clean_readings distinct readings, expected $((accepted + too_late))" >&2
        exit 1
}
echo "clean topic: $clean_readings distinct readings (decoded by tally-decode)"

# dead letters: every rejected message with its reason
dlq_check "$W/expected-dlq.tsv"

# two copies of each daemon, from the start of the same raw topic, into
# an empty database (new consumer groups)
createdb_as run2
export TALLY_PG="$TALLY_PG_BASE dbname=run2"
run_once 2 run2
rows2=$(psql -XAtq "$TALLY_PG" -c "SELECT count(*) FROM tally.rollup_1m")
for w in 5m 1h; do
        echo "$w rows: $(psql -XAtq "$TALLY_PG" -c "SELECT count(*) FROM tally.rollup_$w")"
done
[ "$rows1" = "$rows2" ]
echo "two copies: $rows2 1m rows, equal to the expectation and to one copy"
echo "test_pipeline: ok"
