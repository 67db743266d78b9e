#!/usr/bin/env bash
# Crash test, fast version: ~200k readings with disorder, late, too-late
# and malformed input in the raw topic; one copy of each daemon; every
# daemon is SIGKILLed twice at random moments while the data streams
# through (and restarted right away, same group), and one daemon is
# restarted with SIGTERM. At the end every rollup row of every resolution
# must equal tally-gen's independent computation, and the dead letters
# (deduplicated by origin) its expected reasons and counts.
# TALLY_TEST_SEED replays a run (the data and the kill schedule).
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

# the generator writes while the daemons run (about 20 s at 1,300
# messages/s), so that every kill is mid-stream; it starts first so that
# no raw partition is empty when ingest looks at it (an origin never heard
# from gets a wall-clock heartbeat after the idle timeout)
"$TALLY_BIN/tally-gen" --seed "$SEED" --devices 250 --sites 7 --duration 200s \
        --shapes all --batch 5 --late-share 0.01 --lateish-share 0.02 \
        --malformed-share 0.02 --rate 1300 --expect "$W/expected.tsv" \
        --expect-dlq "$W/expected-dlq.tsv" 2>"$W/gen.log" &
gen_pid=$!
sleep 1

chaos_start ingest --idle-timeout 3s --log-level "$LOG_LEVEL"
chaos_start aggregate --log-level "$LOG_LEVEL"
chaos_start store --pg "$TALLY_PG" --log-level "$LOG_LEVEL"

# the schedule: every daemon SIGKILLed twice, one SIGTERM, random order,
# 1-4 s apart
events=(ingest:KILL ingest:KILL aggregate:KILL aggregate:KILL store:KILL store:KILL)
term=(ingest aggregate store)
chaos_random 3
events+=("${term[$CHAOS_R]}:TERM")
for i in $(seq $(( ${#events[@]} - 1 )) -1 1); do    # Fisher-Yates
        chaos_random $((i + 1))
        j=$CHAOS_R
        t=${events[$i]}; events[$i]=${events[$j]}; events[$j]=$t
done
sleep 2
for ev in "${events[@]}"; do
        chaos_random 3; a=$CHAOS_R; chaos_random 10
        sleep "$((1 + a)).$CHAOS_R"
        chaos_check_alive
        chaos_bounce "$(chaos_slots "${ev%:*}")" "${ev#*:}"
done
chaos_log "schedule done $(chaos_progress)"
wait "$gen_pid" || { echo "tally-gen failed" >&2; tail "$W/gen.log" >&2; exit 1; }
summary=$(grep 'msg=summary' "$W/gen.log")
echo "$summary"
messages=$(echo "$summary" | tr ' ' '\n' | sed -n 's/^messages=//p')
retained=$(chaos_topic_count tally.raw)
echo "raw topic: $retained of $messages messages retained (heartbeats aside)"
[ "$retained" = "$messages" ] || { echo "raw messages lost or doubled by the broker" >&2; exit 1; }

chaos_judge 300 3 || { echo "seed=$SEED" >&2; exit 1; }
daemon_stop_all
chaos_tally
echo "seed=$SEED time=$(chaos_now)s"
echo "test_kill: ok"
