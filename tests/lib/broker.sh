# tests/lib/broker.sh -- start and stop a throwaway tally-devbroker for a
# test script. Source it, then:
#
#   broker_start [extra tally-devbroker args]   # exports TALLY_BROKERS
#   broker_down / broker_up                     # SIGUSR1 / SIGUSR2: all brokers
#   broker_refuse_produce                       # SIGHUP: Produce requests get a
#                                               # retriable error until broker_up
#   broker_stop                                 # SIGTERM, wait, clean up
#
# Needs TALLY_BIN (the build's bin/ directory). Sets BROKER_PID and
# BROKER_DIR (a temp dir holding the bootstrap file and the broker's log,
# BROKER_DIR/devbroker.log). broker_start installs no traps: call
# broker_stop from your own EXIT trap, e.g.
#   trap 'broker_stop' EXIT

BROKER_PID=
BROKER_DIR=

broker_start() {
        if [ -n "$BROKER_PID" ]; then
                echo "broker_start: already running (pid $BROKER_PID)" >&2
                return 1
        fi
        if [ ! -x "${TALLY_BIN:-}/tally-devbroker" ]; then
                echo "broker_start: no tally-devbroker in TALLY_BIN=${TALLY_BIN:-}" >&2
                return 1
        fi
        BROKER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tally-broker.XXXXXX") || return 1
        local bsfile=$BROKER_DIR/bootstrap
        # TALLY_BROKERS from an earlier broker must not leak into the new
        # one's --brokers option
        env -u TALLY_BROKERS "$TALLY_BIN/tally-devbroker" \
                --bootstrap-file "$bsfile" "$@" \
                >"$BROKER_DIR/devbroker.out" 2>"$BROKER_DIR/devbroker.log" &
        BROKER_PID=$!
        local i
        for i in $(seq 1 100); do
                if [ -s "$bsfile" ]; then
                        TALLY_BROKERS=$(cat "$bsfile")
                        export TALLY_BROKERS
                        return 0
                fi
                if ! kill -0 "$BROKER_PID" 2>/dev/null; then
                        echo "broker_start: tally-devbroker exited:" >&2
                        cat "$BROKER_DIR/devbroker.log" >&2
                        wait "$BROKER_PID" 2>/dev/null
                        BROKER_PID=
                        return 1
                fi
                sleep 0.1
        done
        echo "broker_start: no bootstrap file after 10 s" >&2
        broker_stop
        return 1
}

broker_down() {
        [ -n "$BROKER_PID" ] && kill -USR1 "$BROKER_PID"
}

broker_up() {
        [ -n "$BROKER_PID" ] && kill -USR2 "$BROKER_PID"
}

broker_refuse_produce() {
        [ -n "$BROKER_PID" ] && kill -HUP "$BROKER_PID"
}

broker_stop() {
        local rc=0
        if [ -n "$BROKER_PID" ]; then
                kill -TERM "$BROKER_PID" 2>/dev/null
                local i
                for i in $(seq 1 100); do
                        kill -0 "$BROKER_PID" 2>/dev/null || break
                        sleep 0.1
                done
                if kill -0 "$BROKER_PID" 2>/dev/null; then
                        echo "broker_stop: tally-devbroker did not stop, killing" >&2
                        kill -KILL "$BROKER_PID" 2>/dev/null
                        rc=1
                fi
                wait "$BROKER_PID" 2>/dev/null || rc=1
                BROKER_PID=
        fi
        if [ -n "$BROKER_DIR" ]; then
                rm -rf "$BROKER_DIR"
                BROKER_DIR=
        fi
        unset TALLY_BROKERS
        return $rc
}
