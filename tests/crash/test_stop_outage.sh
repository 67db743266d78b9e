#!/usr/bin/env bash
# A stop during a broker outage. tally-ingest, mid-backlog, keeps turning
# its prefetched raw messages into clean batches after every broker went
# down; those can never be acknowledged. On SIGTERM it must still end
# within --stop-timeout (plus its shutdown), exit 1 with
# stop_unacknowledged, and commit nothing past what was acknowledged:
# after the brokers return, new copies in the same groups read it again
# and every rollup row equals tally-gen's independent computation.
# tally-aggregate is stopped alongside; whether it had anything in flight
# depends on the moment (windows close as the clean partitions advance),
# so it may exit 0, or 1 with stop_unacknowledged, but never hang.
set -euo pipefail
: "${TALLY_BIN:?}" "${TALLY_SRC:?}"
. "$TALLY_SRC/tests/lib/pg.sh"
. "$TALLY_SRC/tests/lib/broker.sh"
. "$TALLY_SRC/tests/lib/pipeline.sh"

pipeline_setup
W=$PIPE_DIR
STOP_S=2

# a backlog ingest needs a few tenths of a second for (more under the
# sanitizers), so the outage falls in the middle of it
"$TALLY_BIN/tally-gen" --seed 7 --devices 2000 --sites 7 --duration 180s \
        --expect "$W/expected.tsv" 2>"$W/gen.log"
tail -n 1 "$W/gen.log"

port() { python3 "$TALLY_SRC/tests/lib/free_port.py"; }
metric() {      # port name: the counter's value, 0 while unreachable
        curl -fs "http://127.0.0.1:$1/metrics" 2>/dev/null |
                awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}

ip=$(port)
daemon_start ingest --group ingest-outage --stop-timeout "${STOP_S}s" --http-port "$ip"
ingest_pid=${DAEMON_PIDS[-1]}
ap=$(port)
daemon_start aggregate --group aggregate-outage --stop-timeout "${STOP_S}s" --http-port "$ap"
agg_pid=${DAEMON_PIDS[-1]}

for _ in $(seq 1 600); do
        [ "$(metric "$ip" tally_ingest_messages_total)" -gt 0 ] && break
        sleep 0.05
done
broker_down
read_at_down=$(metric "$ip" tally_ingest_messages_total)
total=$(sed -n 's/.*msg=summary.* messages=\([0-9]*\).*/\1/p' "$W/gen.log")
echo "brokers down after ingest read $read_at_down of $total raw messages"
[ "$read_at_down" -gt 0 ] && [ "$read_at_down" -lt "$total" ] || {
        echo "the outage did not fall mid-backlog" >&2; exit 1; }
sleep 1

# SIGTERM both; each must be gone within the stop timeout and its shutdown
kill -TERM "$ingest_pid" "$agg_pid"
t0=$SECONDS
for pid in "$ingest_pid" "$agg_pid"; do
        while kill -0 "$pid" 2>/dev/null && [ $((SECONDS - t0)) -lt $((STOP_S + 30)) ]; do
                sleep 0.1
        done
done
stopped_s=$((SECONDS - t0))
for pid in "$ingest_pid" "$agg_pid"; do
        if kill -0 "$pid" 2>/dev/null; then
                echo "a daemon still runs $stopped_s s after SIGTERM in the outage" >&2
                exit 1
        fi
done
rc_ingest=0; wait "$ingest_pid" || rc_ingest=$?
rc_agg=0; wait "$agg_pid" || rc_agg=$?
DAEMON_PIDS=(); DAEMON_NAMES=()
echo "stopped within $stopped_s s: ingest exit $rc_ingest, aggregate exit $rc_agg"
[ "$rc_ingest" = 1 ] && grep -q "msg=stop_unacknowledged" "$W"/ingest-*.log || {
        echo "ingest did not end with stop_unacknowledged / exit 1" >&2
        grep -v "kafka_log\|kafka_error" "$W"/ingest-*.log | tail -n 20 >&2
        exit 1
}
grep -h "msg=stop_unacknowledged" "$W"/ingest-*.log | head -n 2
case $rc_agg in
0) ! grep -q "msg=stop_unacknowledged" "$W"/aggregate-*.log ;;
1) grep -q "msg=stop_unacknowledged" "$W"/aggregate-*.log ;;
*) false ;;
esac || { echo "aggregate: exit $rc_agg does not match its log" >&2; exit 1; }

# the brokers return: the same groups resume from what was committed
broker_up
daemon_start ingest --group ingest-outage --idle-timeout 500ms
daemon_start aggregate --group aggregate-outage
daemon_start store --group store-outage --pg "$TALLY_PG"
if ! pipeline_wait "$W/expected.tsv" 240; then
        pipeline_diff "$W/expected.tsv" 20
        exit 1
fi
sleep 3
[ "$(pipeline_compare "$W/expected.tsv")" = 0 ] || {
        echo "rows changed after settling" >&2; pipeline_diff "$W/expected.tsv" 20; exit 1; }
echo "rows: $(pg_sql "SELECT count(*) FROM tally.rollup_1m") 1m rows equal the expectation"
daemon_stop_all
echo "test_stop_outage: ok"
