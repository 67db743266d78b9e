#!/usr/bin/env bash
# A broker outage shorter than the consumer session timeout, with live
# devices that buffer their readings through it (tally-gen --start now,
# paced at the wall clock): ingest was at the head of its raw partitions
# when the brokers went away. The outage must not move event time: no
# reading may become too_late because of it (docs/testing-chaos.md,
# "Findings": ingest used to count the outage as quiet time and queue
# heartbeats ahead of the devices' buffered readings).
#
# The devices reconnect within 1 s of the brokers' return
# (reconnect.backoff.max.ms=1000): a device that is still reconnecting is
# indistinguishable from a quiet one, so its reconnect time must stay well
# inside disorder + lateness (docs/operations.md).
# Scaled down to run in ~4 min: --disorder 1s --lateness 5s
# --idle-timeout 1s, outage 25 s starting 3 s before a minute boundary,
# session.timeout.ms 40000 (production default 45000).
set -euo pipefail
: "${TALLY_BIN:?}" "${TALLY_SRC:?}"
. "$TALLY_SRC/tests/lib/pg.sh"
. "$TALLY_SRC/tests/lib/broker.sh"
. "$TALLY_SRC/tests/lib/pipeline.sh"
. "$TALLY_SRC/tests/lib/chaos.sh"
export TALLY_KAFKA_SESSION_TIMEOUT_MS=${TALLY_KAFKA_SESSION_TIMEOUT_MS:-40000}
chaos_setup
T=(--disorder 1s --lateness 5s)
OUTAGE=${OUTAGE:-25}

"$TALLY_BIN/tally-gen" --seed 7 --devices 100 --sites 3 --duration 150s \
        --start now --rate 200 --jitter 1s "${T[@]}" \
        -X reconnect.backoff.max.ms=1000 \
        --expect "$W/expected.tsv" --expect-dlq "$W/expected-dlq.tsv" \
        2>"$W/gen.log" &
gen_pid=$!
sleep 1
chaos_start ingest --idle-timeout 1s "${T[@]}" -X reconnect.backoff.max.ms=100
chaos_start aggregate "${T[@]}"
chaos_start store --pg "$TALLY_PG" "${T[@]}"
sleep 20
while [ $(( $(date +%s) % 60 )) != 57 ]; do sleep 0.2; done
chaos_log "brokers down"
broker_down
sleep "$OUTAGE"
broker_up
chaos_log "brokers up"
wait "$gen_pid"
# the devbroker does not enforce idempotence: a device's produce retried
# across the outage can be appended twice (docs/devbroker.md), and tally
# rightly counts it twice while tally-gen's expectation counts it once.
# Such a run cannot be judged: start over (up to CHAOS_RERUNS times).
messages=$(grep 'msg=summary' "$W/gen.log" | tr ' ' '\n' | sed -n 's/^messages=//p')
retained=$(chaos_topic_count tally.raw)
if [ "$retained" -gt "$messages" ] &&
   [ "${OUTAGE_RETRIED:-0}" -lt "$CHAOS_RERUNS" ]; then
        echo "test_outage_heartbeat: the devbroker doubled $((retained - messages)) raw messages; starting over"
        chaos_rerun OUTAGE_RETRIED
fi
[ "$retained" = "$messages" ] || {
        echo "test_outage_heartbeat: FAILED: raw topic holds $retained of $messages messages" >&2
        exit 1
}
rc=0
if ! pipeline_wait "$W/expected.tsv" 120; then
        pipeline_diff "$W/expected.tsv" 8
        rc=1
fi
echo "dead letters (expected none):"
dlq_reasons
# heartbeats that precede device data in the raw topic
kcat -C -b "$TALLY_BROKERS" -t tally.raw -e -q -o beginning \
        -f '%p %o %T %h|%s\n' 2>/dev/null |
        awk '{ split($0, a, "|"); split(a[1], f, " "); p = f[1]
               if (a[1] ~ /heartbeat/) { hb[p] = hb[p] " " f[2] ":" a[2]; n[p]++ }
               else if (n[p]) mid[p] = hb[p] }
             END { for (p in mid) print "partition " p " heartbeats (offset:value) before data:" mid[p] }' |
        sort -n -k2 | head -n 3
exit $rc
