#!/usr/bin/env bash
# Chaos test (issue 4, CI version): >= 1,000,000 readings with disorder,
# late, too-late and malformed input in the raw topic; two copies of each
# daemon; every few seconds a random copy is SIGKILLed and restarted (at
# least CHAOS_KILLS kills, the first nine spread three per stage), plus one
# broker outage (all brokers down 5-8 s) and one PostgreSQL stop/start
# during the run. At the end every row of every resolution must equal
# tally-gen's independent computation (count, min, max, first, last
# exactly; sum and mean to 1e-9 relative) and the dead letters,
# deduplicated by origin, the expected reasons and counts.
#
# Knobs (environment): TALLY_TEST_SEED (replay), CHAOS_DEVICES (1000),
# CHAOS_DURATION (260s of event time; 1000 devices x 260 s x 4 metrics =
# 1.04 M readings), CHAOS_RATE (generator messages/s, 2300: about 60 s),
# CHAOS_IDLE (ingest --idle-timeout, 15s), CHAOS_KILLS (12), CHAOS_INTERVAL (seconds between
# kills: 2 + random [0, CHAOS_INTERVAL), default 3), CHAOS_WAIT (seconds to
# wait for the rows to settle, 480), CHAOS_BROKER_OUTAGES and
# CHAOS_PG_RESTARTS (1 each), CHAOS_BROKER_ARGS (extra tally-devbroker
# options, e.g. --partitions-raw 64), TALLY_TEST_LOG_LEVEL (debug),
# TALLY_TEST_KEEP=1 keeps the logs of a failed run.
set -euo pipefail
: "${TALLY_BIN:?}" "${TALLY_SRC:?}"
SEED=${TALLY_TEST_SEED:-$RANDOM}
echo "seed=$SEED"
CHAOS_SEED=$SEED
. "$TALLY_SRC/tests/lib/pg.sh"
. "$TALLY_SRC/tests/lib/broker.sh"
. "$TALLY_SRC/tests/lib/pipeline.sh"
. "$TALLY_SRC/tests/lib/chaos.sh"

DEVICES=${CHAOS_DEVICES:-1000}
DURATION=${CHAOS_DURATION:-260s}
RATE=${CHAOS_RATE:-2300}
IDLE=${CHAOS_IDLE:-15s}
BROKER_OUTAGES=${CHAOS_BROKER_OUTAGES:-1}
PG_RESTARTS=${CHAOS_PG_RESTARTS:-1}
KILLS=${CHAOS_KILLS:-12}
INTERVAL=${CHAOS_INTERVAL:-3}
WAIT=${CHAOS_WAIT:-480}
LOG_LEVEL=${TALLY_TEST_LOG_LEVEL:-debug}
NAME=${CHAOS_NAME:-test_chaos}

fail() {
        echo "$NAME: FAILED: $* (seed=$SEED)" >&2
        chaos_tally >&2
        exit 1
}
# shellcheck disable=SC2086
chaos_setup ${CHAOS_BROKER_ARGS:-}

# ---- the input, written while the daemons run ----
# The generator starts first (an origin never heard from would get a
# wall-clock heartbeat) and writes at RATE messages/s, so that the kills
# hit a pipeline with data in flight at every stage. Ingest's idle timeout
# is longer than the broker outage plus a reconnect, so that no heartbeat
# moves an origin while the generator is still writing (tally-gen's
# expectation assumes none does; see docs/testing-chaos.md).
"$TALLY_BIN/tally-gen" --seed "$SEED" --devices "$DEVICES" --sites 13 \
        --duration "$DURATION" --shapes all --batch 5 --late-share 0.005 \
        --lateish-share 0.01 --malformed-share 0.005 --rate "$RATE" \
        -X reconnect.backoff.max.ms=1000 \
        --expect "$W/expected.tsv" --expect-dlq "$W/expected-dlq.tsv" \
        2>"$W/gen.log" &
gen_pid=$!
sleep 1

# ---- two copies of each daemon ----
for c in 1 2; do
        chaos_start ingest --idle-timeout "$IDLE" --log-level "$LOG_LEVEL" \
                -X reconnect.backoff.max.ms=1000
        chaos_start aggregate --log-level "$LOG_LEVEL" -X reconnect.backoff.max.ms=1000
        chaos_start store --pg "$TALLY_PG" --log-level "$LOG_LEVEL" \
                -X reconnect.backoff.max.ms=1000
done

# ---- the kill loop ----
# the first nine kills: three per stage in random order, then random
stages=(ingest ingest ingest aggregate aggregate aggregate store store store)
for i in $(seq $(( ${#stages[@]} - 1 )) -1 1); do
        chaos_random $((i + 1))
        j=$CHAOS_R
        t=${stages[$i]}; stages[$i]=${stages[$j]}; stages[$j]=$t
done
all=(ingest aggregate store)
# outage j of n happens before kill KILLS*(3j-2)/(3n) (broker) or
# KILLS*(3j-1)/(3n) (PostgreSQL): one of each at a third and two thirds
declare -A broker_at=() pg_at=()
for j in $(seq 1 "$BROKER_OUTAGES"); do
        broker_at[$(( KILLS * (3 * j - 2) / (3 * BROKER_OUTAGES) ))]=1
done
for j in $(seq 1 "$PG_RESTARTS"); do
        pg_at[$(( KILLS * (3 * j - 1) / (3 * PG_RESTARTS) ))]=1
done
outages_broker=() outages_pg=()
sleep 3
for k in $(seq 0 $((KILLS - 1))); do
        chaos_random "$INTERVAL"; a=$CHAOS_R; chaos_random 10
        sleep "$((2 + a)).$CHAOS_R"
        chaos_check_alive || fail "a daemon died by itself"
        if [ -n "${broker_at[$k]:-}" ]; then
                chaos_random 4
                d=$((5 + CHAOS_R))
                chaos_log "broker outage ${d}s $(chaos_progress)"
                b0=$(date +%s.%N)
                broker_down
                sleep "$d"
                broker_up
                d=$(awk -v a="$b0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
                outages_broker+=("$d")
                chaos_log "brokers up after ${d}s"
                sleep 1
        fi
        if [ -n "${pg_at[$k]:-}" ]; then
                chaos_log "postgresql stop $(chaos_progress)"
                p0=$(date +%s.%N)
                pg_down
                sleep 5
                pg_up
                d=$(awk -v a="$p0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
                outages_pg+=("$d")
                chaos_log "postgresql up after ${d}s"
                sleep 1
        fi
        if [ "$k" -lt ${#stages[@]} ]; then
                stage=${stages[$k]}
        else
                chaos_random 3
                stage=${all[$CHAOS_R]}
        fi
        slots=($(chaos_slots "$stage"))
        chaos_random ${#slots[@]}
        chaos_bounce "${slots[$CHAOS_R]}" KILL
done
chaos_log "kill loop done $(chaos_progress)"
loop_end=$(chaos_now)
wait "$gen_pid" || fail "tally-gen failed: $(tail -n 3 "$W/gen.log")"
chaos_log "generator done"
summary=$(grep 'msg=summary' "$W/gen.log")
echo "$summary"
kv() { echo "$summary" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
points=$(kv points)
messages=$(kv messages)
retained=$(chaos_topic_count tally.raw)
echo "raw topic: $retained messages retained of $messages written (heartbeats aside), $points readings"
if [ "$retained" -gt "$messages" ] &&
   [ "${CHAOS_RETRIED:-0}" -lt "$CHAOS_RERUNS" ]; then
        # the devbroker does not enforce idempotence: a produce retried
        # across the outage can append a batch twice (docs/devbroker.md).
        # tally would rightly count those readings twice, tally-gen's
        # expectation once: this run cannot be judged; start over with
        # the next seed (up to CHAOS_RERUNS times: it happened in two
        # runs in a row once, about one run in a few has it)
        echo "$NAME: the devbroker doubled $((retained - messages)) raw messages; starting over with another seed"
        chaos_rerun CHAOS_RETRIED TALLY_TEST_SEED=$((SEED + 1))
fi
[ "$retained" = "$messages" ] ||
        fail "the devbroker dropped raw messages (retention) or doubled them"

# ---- settle and compare ----
chaos_judge "$WAIT" 5 || fail "the rows or dead letters differ"
daemon_stop_all || fail "a daemon did not stop cleanly on SIGTERM"

echo "---- tallies ----"
echo "readings $points in $messages raw messages"
chaos_tally
echo "broker outages (s): ${outages_broker[*]:-none}"
echo "postgresql outages (s): ${outages_pg[*]:-none}"
echo "kill loop ended at ${loop_end}s, rows settled at ${CHAOS_SETTLED}s, total $(chaos_now)s"
echo "seed=$SEED"
echo "$NAME: ok"
