#!/usr/bin/env bash
# tally-store against a PostgreSQL address that accepts TCP connections and
# never answers (a hung server, a half-open firewall): each connect gives up
# after the default connect timeout (10 s, store/pg.h) and is logged as
# pg_unreachable; a SIGTERM then stops the store (exit 0) once the connect
# under way gives up, instead of it waiting for as long as TCP does. A
# connect_timeout in the conninfo still wins over the default.
set -euo pipefail
: "${TALLY_BIN:?}" "${TALLY_SRC:?}"
fail() { echo "test_pg_unreachable: $*" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/tally-pgu.XXXXXX")
srv= st=
trap 'kill $srv $st 2>/dev/null || true; rm -rf "$W"' EXIT

# a listener that accepts and never says a word
python3 - "$W/port" <<'EOF' &
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    held.append(s.accept()[0])
EOF
srv=$!
for _ in $(seq 1 50); do [ -s "$W/port" ] && break; sleep 0.1; done
port=$(cat "$W/port") || fail "the listener did not start"

# waits for the n-th pg_unreachable line of log $1; prints the seconds taken
first_unreachable() {
        local log=$1 t0=$2 i
        for i in $(seq 1 300); do
                if grep -q 'msg=pg_unreachable' "$log"; then
                        echo $(( $(date +%s) - t0 ))
                        return 0
                fi
                sleep 0.1
        done
        return 1
}

run_store() {
        local log=$1 conninfo=$2
        TALLY_BROKERS=127.0.0.1:9 "$TALLY_BIN/tally-store" --pg "$conninfo" \
                >"$log" 2>&1 &
        st=$!
}

# SIGTERM; the store must be gone within $1 s (a connect under way ends first)
stop_store() {
        local limit=$1 i rc
        kill -TERM "$st"
        for i in $(seq 1 $((limit * 10))); do
                kill -0 "$st" 2>/dev/null || break
                sleep 0.1
        done
        kill -0 "$st" 2>/dev/null && fail "tally-store did not stop within $limit s of SIGTERM"
        set +e
        wait "$st"
        rc=$?
        set -e
        st=
        [ "$rc" = 0 ] || fail "tally-store exited $rc after SIGTERM, expected 0"
}

# the default
t0=$(date +%s)
run_store "$W/default.log" "host=127.0.0.1 port=$port user=tally dbname=tally"
secs=$(first_unreachable "$W/default.log" "$t0") ||
        fail "no pg_unreachable within 30 s: $(tail -n 3 "$W/default.log")"
grep 'msg=pg_unreachable' "$W/default.log" | head -n 1 | grep -qi 'timeout' ||
        fail "pg_unreachable does not say it timed out: $(grep pg_unreachable "$W/default.log" | head -n 1)"
[ "$secs" -ge 8 ] && [ "$secs" -le 20 ] ||
        fail "first connect gave up after $secs s, expected about 10"
stop_store 15
echo "default: gave up after ${secs} s, stopped on SIGTERM"

# the conninfo's own connect_timeout wins
t0=$(date +%s)
run_store "$W/own.log" "host=127.0.0.1 port=$port user=tally dbname=tally connect_timeout=2"
secs=$(first_unreachable "$W/own.log" "$t0") ||
        fail "no pg_unreachable within 30 s with connect_timeout=2"
[ "$secs" -le 6 ] || fail "connect_timeout=2 gave up after $secs s"
stop_store 6
echo "connect_timeout=2: gave up after ${secs} s"
echo "test_pg_unreachable: ok"
