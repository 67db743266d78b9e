#!/usr/bin/env bash
# tally-store stopped while a dead letter waits for its acknowledgement.
# The devbroker refuses every Produce request (SIGHUP: a retriable error,
# as with too few in-sync replicas), so the dead letter of a bad rollup is
# never acknowledged, and the batch holding its offset must not commit
# before it is. On SIGTERM the store must still end within --stop-timeout
# (plus its shutdown), exit 1 with stop_unacknowledged and write nothing
# of that batch. Once the brokers accept again, a new copy in the same
# group reads the batch again: the good rollup becomes its row and the
# bad one a dead letter, each exactly once.
set -euo pipefail
: "${TALLY_BIN:?}" "${TALLY_SRC:?}"
. "$TALLY_SRC/tests/lib/pg.sh"
. "$TALLY_SRC/tests/lib/broker.sh"
. "$TALLY_SRC/tests/lib/pipeline.sh"

pipeline_setup --partitions-rollups 1
W=$PIPE_DIR
STOP_S=2

# one partition: a good rollup, a bad record, another good rollup
M=$(( ($(date +%s) / 60 - 10) * 60000 ))
rollup() {      # DEVICE SUM
        printf '{"v":1,"site":"DAL-07","device":"%s","metric":"kwh",' "$1"
        printf '"window_ms":60000,"start_ms":%s,"count":1,"sum":%s,' "$M" "$2"
        printf '"min":%s,"max":%s,' "$2" "$2"
        printf '"first":{"ts_ms":%s,"value":%s,"origin":[0,1,0]},' $((M + 1000)) "$2"
        printf '"last":{"ts_ms":%s,"value":%s,"origin":[0,1,0]},' $((M + 1000)) "$2"
        printf '"version":1}\n'
}
{
        rollup meter-1 11
        echo 'not a rollup'
        rollup meter-2 22
} | kcat -P -b "$TALLY_BROKERS" -t tally.rollups -p 0

broker_refuse_produce
for _ in $(seq 1 50); do
        grep -q "msg=produce_refused" "$BROKER_DIR/devbroker.log" && break
        sleep 0.1
done
grep -q "msg=produce_refused" "$BROKER_DIR/devbroker.log" || {
        echo "the devbroker did not start refusing Produce requests" >&2; exit 1; }
hp=$(python3 "$TALLY_SRC/tests/lib/free_port.py")
daemon_start store --group store-dlq --pg "$TALLY_PG" --stop-timeout "${STOP_S}s" \
        --http-port "$hp"
pid=${DAEMON_PIDS[-1]}
log=$W/${DAEMON_NAMES[-1]}.log
for _ in $(seq 1 300); do
        grep -q "msg=dlq_unacknowledged" "$log" && break
        kill -0 "$pid" 2>/dev/null || { echo "tally-store died" >&2; cat "$log" >&2; exit 1; }
        sleep 0.1
done
grep -q "msg=dlq_unacknowledged" "$log" || {
        echo "tally-store did not wait for its dead letter" >&2; tail -n 20 "$log" >&2; exit 1; }
[ "$(pg_sql "SELECT count(*) FROM tally.rollup_1m_data")" = 0 ] || {
        echo "rows were written before the dead letter was acknowledged" >&2; exit 1; }
pending=
for _ in $(seq 1 20); do
        pending=$(curl -fs "http://127.0.0.1:$hp/metrics" |
                awk '$1 == "tally_store_dlq_pending" { print $2 }')
        [ "$pending" = 1 ] && break
        sleep 0.1
done
[ "$pending" = 1 ] || { echo "tally_store_dlq_pending: [$pending], want 1" >&2; exit 1; }

kill -TERM "$pid"
t0=$SECONDS
while kill -0 "$pid" 2>/dev/null && [ $((SECONDS - t0)) -lt $((STOP_S + 30)) ]; do
        sleep 0.1
done
stopped_s=$((SECONDS - t0))
if kill -0 "$pid" 2>/dev/null; then
        echo "tally-store still runs $stopped_s s after SIGTERM" >&2
        exit 1
fi
rc=0; wait "$pid" || rc=$?
DAEMON_PIDS=(); DAEMON_NAMES=()
echo "stopped within $stopped_s s: exit $rc"
[ "$rc" = 1 ] && grep -q "msg=stop_unacknowledged" "$log" || {
        echo "tally-store did not end with stop_unacknowledged / exit 1" >&2
        tail -n 20 "$log" >&2; exit 1; }
grep -h "msg=stop_unacknowledged" "$log"
got=$(pg_sql "SELECT (SELECT count(*) FROM tally.rollup_1m_data) || '/' || coalesce((SELECT max(greatest(next_offset, 0)) FROM tally.store_offsets), 0)")
[ "$got" = 0/0 ] || { echo "the abandoned batch left rows/offsets: $got" >&2; exit 1; }

# the brokers accept again: a new copy reads the batch again
broker_up
daemon_start store --group store-dlq --pg "$TALLY_PG"
for _ in $(seq 1 300); do
        [ "$(pg_sql "SELECT coalesce(max(next_offset), 0) FROM tally.store_offsets")" = 3 ] && break
        sleep 0.1
done
got=$(pg_sql "SELECT string_agg(device || '=' || sum, ',' ORDER BY device) FROM tally.rollup_1m")
[ "$got" = "meter-1=11,meter-2=22" ] || { echo "rows after restart: [$got]" >&2; exit 1; }
n=$(kcat -C -b "$TALLY_BROKERS" -t tally.dlq -o beginning -e -q -f '%s\n' 2>/dev/null | grep -c 'not a rollup' || true)
[ "$n" = 1 ] || { echo "dead letters of the bad record: $n, want 1" >&2; exit 1; }
echo "rows $got, one dead letter"
daemon_stop_all
echo "test_stop_dlq: ok"
