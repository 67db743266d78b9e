#!/usr/bin/env bash
# Rebalance test: one copy of each daemon processes a generated stream
# (~200k readings with disorder, late, too-late and malformed input,
# written while the daemons run); mid-stream a second copy of each daemon
# joins its consumer group, later the first copies leave gracefully
# (SIGTERM, exit 0), and later still a third copy of each joins. At the
# end every rollup row of every resolution equals tally-gen's computation
# and the dead letters (deduplicated by origin) the expected counts.
set -euo pipefail
: "${TALLY_BIN:?}" "${TALLY_SRC:?}"
SEED=${TALLY_TEST_SEED:-$RANDOM}
echo "seed=$SEED"
CHAOS_SEED=$SEED
. "$TALLY_SRC/tests/lib/pg.sh"
. "$TALLY_SRC/tests/lib/broker.sh"
. "$TALLY_SRC/tests/lib/pipeline.sh"
. "$TALLY_SRC/tests/lib/chaos.sh"

LOG_LEVEL=${TALLY_TEST_LOG_LEVEL:-debug}
chaos_setup

"$TALLY_BIN/tally-gen" --seed "$SEED" --devices 250 --sites 7 --duration 200s \
        --shapes all --batch 5 --late-share 0.01 --lateish-share 0.02 \
        --malformed-share 0.02 --rate 1000 --expect "$W/expected.tsv" \
        --expect-dlq "$W/expected-dlq.tsv" 2>"$W/gen.log" &
gen_pid=$!
sleep 1

start_copy() {
        chaos_start ingest --idle-timeout 3s --log-level "$LOG_LEVEL"
        chaos_start aggregate --log-level "$LOG_LEVEL"
        chaos_start store --pg "$TALLY_PG" --log-level "$LOG_LEVEL"
}
start_copy                              # slots 0 1 2
sleep 7
chaos_log "second copies join $(chaos_progress)"
start_copy                              # slots 3 4 5
sleep 8
chaos_log "first copies leave (SIGTERM) $(chaos_progress)"
for s in 0 1 2; do
        chaos_kill "$s" TERM || { echo "seed=$SEED" >&2; exit 1; }
done
chaos_log "first copies exited 0"
sleep 5
chaos_log "third copies join $(chaos_progress)"
start_copy                              # slots 6 7 8

wait "$gen_pid" || { echo "tally-gen failed" >&2; tail "$W/gen.log" >&2; exit 1; }
chaos_log "generator done $(chaos_progress)"
summary=$(grep 'msg=summary' "$W/gen.log")
echo "$summary"
messages=$(echo "$summary" | tr ' ' '\n' | sed -n 's/^messages=//p')
retained=$(chaos_topic_count tally.raw)
echo "raw topic: $retained of $messages messages retained (heartbeats aside)"
[ "$retained" = "$messages" ] || { echo "raw messages lost or doubled by the broker" >&2; exit 1; }

chaos_judge 300 3 || { echo "seed=$SEED" >&2; exit 1; }
daemon_stop_all
echo "seed=$SEED time=$(chaos_now)s"
echo "test_rebalance: ok"
