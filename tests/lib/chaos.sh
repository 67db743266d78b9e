# tests/lib/chaos.sh -- kill and restart tally daemons during a test.
# Source after pg.sh, broker.sh and pipeline.sh. Each daemon copy is a
# "slot" (an index into pipeline.sh's DAEMON_PIDS / DAEMON_NAMES, so
# daemon_stop_all still stops everything) that remembers its arguments:
#
#   chaos_start NAME ARGS...      # daemon_start + remember ARGS; the slot
#                                 # number is left in CHAOS_SLOT
#   chaos_kill SLOT [SIGNAL]      # SIGKILL (default) or another signal,
#                                 # waits for the process; after SIGTERM
#                                 # a non-zero exit status is an error
#   chaos_restart SLOT            # start the slot again, same arguments,
#                                 # log appended to the same file
#   chaos_bounce SLOT [SIGNAL]    # kill + restart, counted in the tallies
#   chaos_slots NAME              # the slot numbers of daemon NAME
#   chaos_alive SLOT              # true while the slot's process runs
#   chaos_check_alive             # fails (and prints log tails) when a
#                                 # daemon died by itself
#   chaos_random N                # sets CHAOS_R to a pseudo-random number
#                                 # in [0, N), a function of CHAOS_SEED and
#                                 # the calls before (not in a subshell)
#   chaos_tally                   # prints the kills per daemon and signal
#   chaos_progress                # "pg_1m_rows/readings=ROWS/READINGS" so far
#   chaos_topic_count TOPIC       # messages retained in TOPIC (kcat)
#   chaos_rerun VAR [ENV=V...]    # stop everything, run the script again
#                                 # with VAR one higher (callers bound it)
#   chaos_judge WAIT SETTLE       # the end of a run: rows, settled rows,
#                                 # live daemons, dead letters (below)
#   chaos_setup [BROKER ARGS]     # the test's servers: PostgreSQL and the
#                                 # devbroker, the group timings, W=$PIPE_DIR,
#                                 # and an EXIT trap that stops everything
#                                 # (TALLY_TEST_KEEP=1 keeps a failed run's logs)
#
# Log lines of chaos events ("chaos: ...") go to stdout with the seconds
# since chaos.sh was sourced.

CHAOS_ARGS=()
CHAOS_SLOT=
CHAOS_T0=$(date +%s.%N)
declare -A CHAOS_TALLY=()
CHAOS_RNG=${CHAOS_SEED:-1}

chaos_now() {
        awk -v a="$CHAOS_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

chaos_log() {
        echo "chaos: t=$(chaos_now)s $*"
}

chaos_random() {
        # a 31-bit LCG so that a seed replays the same choices; the state
        # lives in this shell, so call it directly (not in $(...)) and
        # read CHAOS_R
        CHAOS_RNG=$(( (CHAOS_RNG * 1103515245 + 12345) % 2147483648 ))
        CHAOS_R=$(( (CHAOS_RNG / 65536) % $1 ))
}

chaos_start() {
        local name=$1
        shift
        daemon_start "$name" "$@"
        CHAOS_SLOT=$(( ${#DAEMON_PIDS[@]} - 1 ))
        CHAOS_ARGS[$CHAOS_SLOT]=$(printf '%q ' "$@")
}

chaos_alive() {
        local pid=${DAEMON_PIDS[$1]}
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

chaos_kill() {
        local slot=$1 sig=${2:-KILL} pid=${DAEMON_PIDS[$1]} rc=0
        [ -n "$pid" ] || return 0
        kill -"$sig" "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null || rc=$?
        DAEMON_PIDS[$slot]=
        if [ "$sig" != KILL ] && [ "$rc" != 0 ]; then
                echo "chaos: ${DAEMON_NAMES[$slot]} exited $rc after SIG$sig; log tail:" >&2
                grep -v CONFWARN "$PIPE_DIR/${DAEMON_NAMES[$slot]}.log" | tail -n 10 >&2
                return 1
        fi
        return 0
}

chaos_restart() {
        local slot=$1 name=${DAEMON_NAMES[$1]}
        local bin=${name%-*}
        eval "set -- ${CHAOS_ARGS[$slot]}"
        echo "chaos: ---- restart at $(date +%T.%N) ----" >>"$PIPE_DIR/$name.log"
        "$TALLY_BIN/tally-$bin" "$@" >>"$PIPE_DIR/$name.log" 2>&1 &
        DAEMON_PIDS[$slot]=$!
}

chaos_bounce() {
        local slot=$1 sig=${2:-KILL} name=${DAEMON_NAMES[$1]}
        local bin=${name%-*}
        chaos_log "SIG$sig $name (pid ${DAEMON_PIDS[$slot]}) $(chaos_progress)"
        chaos_kill "$slot" "$sig" || return 1
        CHAOS_TALLY[$bin/$sig]=$(( ${CHAOS_TALLY[$bin/$sig]:-0} + 1 ))
        chaos_restart "$slot"
}

# what has reached PostgreSQL so far (shows that a kill was mid-stream)
chaos_progress() {
        local r
        r=$(timeout 5 "$PG_BIN/psql" -XAtq -c \
                "SELECT count(*) || '/' || coalesce(sum(count), 0) FROM tally.rollup_1m" \
                2>/dev/null) || r=unreachable
        echo "pg_1m_rows/readings=${r:-none}"
}

chaos_slots() {
        local i
        for i in "${!DAEMON_NAMES[@]}"; do
                [ "${DAEMON_NAMES[$i]%-*}" = "$1" ] && echo "$i"
        done
        return 0
}

chaos_check_alive() {
        local i rc=0
        for i in "${!DAEMON_PIDS[@]}"; do
                [ -n "${DAEMON_PIDS[$i]}" ] || continue
                if ! kill -0 "${DAEMON_PIDS[$i]}" 2>/dev/null; then
                        echo "chaos: ${DAEMON_NAMES[$i]} died by itself; log tail:" >&2
                        grep -v CONFWARN "$PIPE_DIR/${DAEMON_NAMES[$i]}.log" | tail -n 60 >&2
                        rc=1
                fi
        done
        return $rc
}

chaos_tally() {
        local k n=0
        for k in $(printf '%s\n' "${!CHAOS_TALLY[@]}" | sort); do
                echo "kills $k ${CHAOS_TALLY[$k]}"
                n=$((n + CHAOS_TALLY[$k]))
        done
        echo "kills total $n"
}

# the number of messages retained in a topic (read from the beginning
# of every partition to the end; the devbroker drops old batches silently
# beyond 5 MiB per partition, which makes this smaller than what was
# written). Heartbeat records (header tally-heartbeat) are not counted.
chaos_topic_count() {
        kcat -C -b "$TALLY_BROKERS" -t "$1" -e -q -o beginning -f '%h\n' 2>/dev/null |
                grep -vc 'tally-heartbeat=' || true
}

# chaos_rerun VAR [ENV=VALUE...]: stops everything this run started and
# runs the test script again from the start with VAR one higher (unset
# counts as 0) and the extra environment; callers check VAR against
# CHAOS_RERUNS first.
CHAOS_RERUNS=2
chaos_rerun() {
        local var=$1 n=$((${!1:-0} + 1))
        shift
        trap - EXIT
        daemon_stop_all >/dev/null 2>&1 || true
        broker_stop || true
        pg_stop || true
        rm -rf "$PIPE_DIR"
        exec env -u PIPE_DIR -u TALLY_BROKERS -u TALLY_PG "$var=$n" "$@" \
                bash "$0"
}

# chaos_judge WAIT SETTLE: every rollup row equals $W/expected.tsv within
# WAIT seconds and still does SETTLE seconds later, no daemon died by
# itself, and the dead letters (deduplicated by origin) equal
# $W/expected-dlq.tsv. Prints what it found and sets CHAOS_SETTLED (the
# seconds at which the rows first equalled the expectation); returns 1
# with the difference printed and the reason on stderr.
chaos_judge() {
        local n rows
        if ! pipeline_wait "$W/expected.tsv" "$1"; then
                pipeline_diff "$W/expected.tsv" 20
                chaos_check_alive || true
                echo "rows differ from the expectation after $1 s" >&2
                return 1
        fi
        CHAOS_SETTLED=$(chaos_now)
        chaos_log "rows equal the expectation"
        sleep "$2"
        n=$(pipeline_compare "$W/expected.tsv")
        if [ "$n" != 0 ]; then
                pipeline_diff "$W/expected.tsv" 20
                echo "$n rows changed after they had settled" >&2
                return 1
        fi
        chaos_check_alive || { echo "a daemon died by itself" >&2; return 1; }
        rows=$(pg_sql "SELECT (SELECT count(*) FROM tally.rollup_1m) || ' 1m rows, ' || (SELECT count(*) FROM tally.rollup_1h) || ' 1h rows, ' || (SELECT sum(count) FROM tally.rollup_1m) || ' readings counted'")
        echo "postgresql: $rows, equal to the expectation"
        dlq_check "$W/expected-dlq.tsv"
}

chaos_setup() {
        pipeline_setup "$@"
        W=$PIPE_DIR
}
