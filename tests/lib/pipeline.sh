# tests/lib/pipeline.sh -- run tally's daemons for a test or the demo and
# check what lands in PostgreSQL against tally-gen's expected rollups.
# Source after pg.sh and broker.sh (needs TALLY_BIN, TALLY_BROKERS, TALLY_PG).
#
#   pipeline_setup [BROKER ARGS]      # pg_start, broker_start, pipeline_env,
#                                     # and an EXIT trap that stops the
#                                     # daemons and servers and removes
#                                     # PIPE_DIR (kept on failure when
#                                     # TALLY_TEST_KEEP is set)
#   pipeline_env                      # test-friendly Kafka group timings
#   daemon_start NAME ARGS...         # starts tally-NAME in the background;
#                                     # its pid is recorded in DAEMON_PIDS
#   daemon_stop_all                   # SIGTERM all, fail if one exits non-zero
#                                     # or is still running PIPE_STOP_TIMEOUT
#                                     # (60) s later: then its stacks, SIGKILL
#   pipeline_compare EXPECT_TSV       # prints the number of differing rows
#   pipeline_wait EXPECT_TSV SECONDS  # waits until no row differs
#   pipeline_diff EXPECT_TSV          # prints the first differing rows
#   dlq_reasons                       # "reason count" of tally.dlq, deduplicated
#   dlq_check EXPECT_TSV              # dlq_reasons equal EXPECT_TSV (tally-gen's
#                                     # --expect-dlq), else the diff and 1
#
# Daemon logs go to $PIPE_DIR/<name>-<n>.log.

DAEMON_PIDS=()
DAEMON_NAMES=()
PIPE_DIR=${PIPE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/tally-pipe.XXXXXX")}

pipeline_env() {
        # the development broker stalls a rebalance for session.timeout - 1 s
        export TALLY_KAFKA_SESSION_TIMEOUT_MS=${TALLY_KAFKA_SESSION_TIMEOUT_MS:-3000}
        export TALLY_KAFKA_HEARTBEAT_INTERVAL_MS=${TALLY_KAFKA_HEARTBEAT_INTERVAL_MS:-500}
}

pipeline_setup() {
        trap _pipeline_cleanup EXIT
        pg_start
        broker_start "$@"
        pipeline_env
}

_pipeline_cleanup() {
        local rc=$?
        daemon_stop_all >/dev/null 2>&1 || true
        broker_stop || true
        pg_stop || true
        if [ "$rc" != 0 ] && [ -n "${TALLY_TEST_KEEP:-}" ]; then
                echo "logs kept in $PIPE_DIR"
        else
                rm -rf "$PIPE_DIR"
        fi
}

daemon_start() {
        local name=$1
        shift
        local n=${#DAEMON_PIDS[@]}
        "$TALLY_BIN/tally-$name" "$@" >>"$PIPE_DIR/$name-$n.log" 2>&1 &
        DAEMON_PIDS+=($!)
        DAEMON_NAMES+=("$name-$n")
}

daemon_stop_all() {
        local i pid st rc=0 deadline=$((SECONDS + ${PIPE_STOP_TIMEOUT:-60}))
        for i in "${!DAEMON_PIDS[@]}"; do
                [ -n "${DAEMON_PIDS[$i]}" ] && kill -TERM "${DAEMON_PIDS[$i]}" 2>/dev/null
        done
        for i in "${!DAEMON_PIDS[@]}"; do
                pid=${DAEMON_PIDS[$i]}
                [ -n "$pid" ] || continue
                while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
                        sleep 0.2
                done
                if kill -0 "$pid" 2>/dev/null; then
                        echo "daemon ${DAEMON_NAMES[$i]} (pid $pid) did not exit" \
                                "${PIPE_STOP_TIMEOUT:-60} s after SIGTERM; its threads:" >&2
                        _daemon_stacks "$pid" >&2
                        kill -KILL "$pid" 2>/dev/null
                        wait "$pid" 2>/dev/null
                        tail -n 60 "$PIPE_DIR/${DAEMON_NAMES[$i]}.log" >&2
                        rc=1
                else
                        st=0
                        wait "$pid" || st=$?
                        if [ "$st" != 0 ]; then
                                echo "daemon ${DAEMON_NAMES[$i]} exited with status $st" \
                                        "(over 128: killed by signal $st - 128); log tail:" >&2
                                tail -n 60 "$PIPE_DIR/${DAEMON_NAMES[$i]}.log" >&2
                                rc=1
                        fi
                fi
        done
        DAEMON_PIDS=()
        DAEMON_NAMES=()
        return $rc
}

# The stack of every thread of a process that hangs: gdb's when it is
# installed, else the kernel's view of where each thread waits.
_daemon_stacks() {
        local t
        if command -v gdb >/dev/null; then
                timeout 60 gdb -p "$1" -batch -nx -ex "thread apply all bt" 2>&1 |
                        grep -v '^\[New LWP\|^warning:'
                return
        fi
        for t in /proc/"$1"/task/*; do
                echo "thread ${t##*/} $(cat "$t/comm" 2>/dev/null): $(cat "$t/wchan" 2>/dev/null)"
        done
}

# Every resolution of TALLY_WINDOWS (default 1m,1h), as one relation with
# its window size in ms: the views are named tally.rollup_<label>.
_pipeline_actual() {
        local w n ms sep="  "
        for w in $(tr ',' ' ' <<<"${TALLY_WINDOWS:-1m,1h}"); do
                n=${w%[smhd]}
                case $w in
                *s) ms=$((n * 1000)) ;;
                *m) ms=$((n * 60000)) ;;
                *h) ms=$((n * 3600000)) ;;
                *d) ms=$((n * 86400000)) ;;
                esac
                echo "${sep}SELECT ${ms}::bigint AS window_ms, * FROM tally.rollup_$w"
                sep="  UNION ALL "
        done
        echo ";"
}

# The SQL that loads the expectation and lists differing rows of every
# resolution found in it. $1 = TSV path, $2 = the final SELECT's list.
_pipeline_sql() {
        local tsv=$1 what=$2
        cat <<SQL
CREATE TEMP TABLE expected(window_ms bigint, site text, device text,
  metric text, bucket_ms bigint, count bigint, sum float8, min float8,
  max float8, first_ts_ms bigint, first_value float8, last_ts_ms bigint,
  last_value float8);
\copy expected FROM '$tsv'
CREATE TEMP VIEW actual AS
$(_pipeline_actual)
CREATE TEMP VIEW diff AS
  SELECT coalesce(e.window_ms, a.window_ms) AS window_ms,
         coalesce(e.site, a.site) AS site, coalesce(e.device, a.device) AS device,
         coalesce(e.metric, a.metric) AS metric,
         coalesce(to_timestamp(e.bucket_ms / 1000.0), a.bucket) AS bucket,
         e.count AS exp_count, a.count AS got_count, e.sum AS exp_sum,
         a.sum AS got_sum, e.min AS exp_min, a.min AS got_min,
         e.max AS exp_max, a.max AS got_max,
         e.first_value AS exp_first, a.first_value AS got_first,
         e.last_value AS exp_last, a.last_value AS got_last
  FROM expected e FULL OUTER JOIN actual a
    ON a.window_ms = e.window_ms AND a.site = e.site AND a.device = e.device
   AND a.metric = e.metric
   AND a.bucket = 'epoch'::timestamptz + e.bucket_ms * interval '1 millisecond'
  WHERE e.site IS NULL OR a.site IS NULL OR a.count <> e.count
     OR a.min <> e.min OR a.max <> e.max
     OR a.first_value <> e.first_value OR a.last_value <> e.last_value
     OR a.first_ts <> 'epoch'::timestamptz + e.first_ts_ms * interval '1 millisecond'
     OR a.last_ts <> 'epoch'::timestamptz + e.last_ts_ms * interval '1 millisecond'
     OR abs(a.sum - e.sum) > 1e-9 * greatest(1, abs(e.sum))
     OR abs(a.mean - e.sum / e.count) > 1e-9 * greatest(1, abs(e.sum / e.count));
$what
SQL
}

pipeline_compare() {
        _pipeline_sql "$1" "SELECT count(*) FROM diff;" |
                psql -XAtq -v ON_ERROR_STOP=1 "$TALLY_PG" 2>/dev/null | tail -n 1
}

pipeline_diff() {
        _pipeline_sql "$1" "SELECT * FROM diff ORDER BY window_ms, site, device, metric, bucket LIMIT ${2:-10};" |
                psql -X -q -v ON_ERROR_STOP=1 "$TALLY_PG"
}

# Fails when a daemon started here exited on its own with an error (a
# crash, a sanitizer report): killed (SIGKILL/SIGTERM) or clean exits pass.
pipeline_check_daemons() {
        local i rc
        for i in "${!DAEMON_PIDS[@]}"; do
                [ -n "${DAEMON_PIDS[$i]}" ] || continue
                kill -0 "${DAEMON_PIDS[$i]}" 2>/dev/null && continue
                rc=0
                wait "${DAEMON_PIDS[$i]}" 2>/dev/null || rc=$?
                DAEMON_PIDS[$i]=
                case $rc in
                0|127|137|143) ;;
                *)
                        echo "daemon ${DAEMON_NAMES[$i]} died (exit $rc); log tail:" >&2
                        grep -v CONFWARN "$PIPE_DIR/${DAEMON_NAMES[$i]}.log" | tail -n 80 >&2
                        return 1 ;;
                esac
        done
}

pipeline_wait() {
        local tsv=$1 secs=$2 n=-1 t=0
        while [ "$t" -lt "$secs" ]; do
                pipeline_check_daemons || return 1
                n=$(pipeline_compare "$tsv")
                [ "$n" = 0 ] && return 0
                sleep 2
                t=$((t + 2))
        done
        echo "pipeline_wait: $n rows still differ after ${secs}s" >&2
        return 1
}

dlq_reasons() {
        # dead letters are at-least-once: count each origin once
        kcat -C -b "$TALLY_BROKERS" -t "${TALLY_TOPIC_DLQ:-tally.dlq}" -e -q \
                -o beginning -f '%h\n' 2>/dev/null |
                awk -F, '{
                        r = ""; k = "";
                        for (i = 1; i <= NF; i++) {
                                split($i, kv, "=");
                                if (kv[1] == "tally-reason") r = kv[2];
                                if (kv[1] ~ /^tally-origin-(partition|offset|index|element)$/ ||
                                    kv[1] == "tally-origin-topic" || kv[1] == "tally-stage")
                                        k = k "/" kv[2];
                        }
                        if (!seen[r k]++) n[r]++
                } END { for (r in n) print r "\t" n[r] }' | sort
}

dlq_check() {
        dlq_reasons >"$PIPE_DIR/dlq.tsv"
        if ! diff -u "$1" "$PIPE_DIR/dlq.tsv"; then
                echo "dead letters differ from the expectation" >&2
                return 1
        fi
        echo "dead letters: $(awk '{n += $2} END {print n}' "$PIPE_DIR/dlq.tsv") as expected"
}
