#!/usr/bin/env bash
# tests/integration/test_gen.sh -- tally-gen and tally-devbroker:
#   - same options and seed give byte-identical output; another seed differs
#   - --expect is consistent (each resolution counts every accepted point)
#   - live (--start now): event time keeps up with the wall clock when
#     --rate allows the model's rate, and a --rate below it is warned of
#     and shows in max_behind_ms
#   - produced to the devbroker, every message arrives (counted with kcat),
#     each device in one partition, record timestamps as the model says
#   - an unknown topic is an error and is not created
#   - the devbroker refuses bad partition counts and answers SIGUSR1/2
set -u
: "${TALLY_BIN:?TALLY_BIN must point at the build bin/ directory}"
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/broker.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tally-test-gen.XXXXXX")
trap 'broker_stop; rm -rf "$WORK"' EXIT
GEN=$TALLY_BIN/tally-gen
fails=0

ok() { echo "ok - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# field=value from a logfmt summary line
field() { sed -n "s/.*msg=summary.* $1=\([0-9]*\).*/\1/p" "$2" | tail -1; }

# ---- determinism (stdout) ----------------------------------------------
common=(--out stdout --devices 300 --sites 7 --duration 90s --shapes all
        --batch 4 --malformed-share 0.05 --late-share 0.02 --lateish-share 0.05)
"$GEN" "${common[@]}" --seed 42 --expect "$WORK/e1" --expect-dlq "$WORK/d1" \
        >"$WORK/o1" 2>"$WORK/l1" || bad "gen run 1 exit"
"$GEN" "${common[@]}" --seed 42 --expect "$WORK/e2" --expect-dlq "$WORK/d2" \
        >"$WORK/o2" 2>"$WORK/l2" || bad "gen run 2 exit"
"$GEN" "${common[@]}" --seed 43 >"$WORK/o3" 2>/dev/null || bad "gen run 3 exit"
check "same seed: identical messages" cmp -s "$WORK/o1" "$WORK/o2"
check "same seed: identical expected rollups" cmp -s "$WORK/e1" "$WORK/e2"
check "same seed: identical expected dlq" cmp -s "$WORK/d1" "$WORK/d2"
differ() { ! cmp -s "$1" "$2"; }
check "other seed: different messages" differ "$WORK/o1" "$WORK/o3"
check "stdout lines = messages" \
        [ "$(wc -l <"$WORK/o1")" = "$(field messages "$WORK/l1")" ]

gz_ok() {
        local line
        line=$(grep -m1 -P '\tgz:' "$1" | cut -f2) || return 1
        printf '%s' "${line#gz:}" | base64 -d | gzip -dc | grep -q '"device"'
}
b64_ok() {
        local line
        line=$(grep -m1 -P '\tb64:' "$1" | cut -f2) || return 1
        [ "$(printf '%s' "${line#b64:}" | base64 -d | wc -l)" -ge 1 ]
}
check "stdout: gz: lines are base64 of gzip JSON" gz_ok "$WORK/o1"
check "stdout: b64: lines are base64 of NDJSON" b64_ok "$WORK/o1"

accepted=$(field accepted "$WORK/l1")
sums=$(awk -F'\t' '{c[$1] += $6} END {for (w in c) print w, c[w]}' "$WORK/e1" | sort -n)
echo "# accepted=$accepted per resolution: $(echo $sums)"
check "expect: 1m rows count every accepted point" \
        [ "$(echo "$sums" | awk '$1 == 60000 {print $2}')" = "$accepted" ]
check "expect: 1h rows count every accepted point" \
        [ "$(echo "$sums" | awk '$1 == 3600000 {print $2}')" = "$accepted" ]
check "expect: rows sorted" \
        bash -c "LC_ALL=C sort -t\$'\t' -k1,1n -k2,2 -k3,3 -k4,4 -k5,5n -c '$WORK/e1'"
check "expect: min <= first,last <= max and sum within count*[min,max]" \
        awk -F'\t' '$8 > $9 || $11 < $8 || $11 > $9 || $13 < $8 || $13 > $9 ||
                    $7 < $6 * $8 - 1e-6 || $7 > $6 * $9 + 1e-6 || $10 > $12 {
                            print "bad row: " $0; bad = 1 } END { exit bad }' "$WORK/e1"
too_late=$(field too_late "$WORK/l1")
check "expect-dlq: too_late matches the summary" \
        [ "$(awk -F'\t' '$1 == "too_late" {print $2}' "$WORK/d1")" = "$too_late" ]
check "expect-dlq: has malformed_json and decompression_failed rows" \
        grep -q -e '^malformed_json' -e '^decompression_failed' "$WORK/d1"

# ---- live pacing (stdout) -----------------------------------------------
# 100 devices every 31 ms (--rate-per-device 32 rounds to 31 ms): 3225.8
# reports/s; --rate 3000 falls ~7 % behind, about 200 ms in 3 s
live=(--out stdout --start now --devices 100 --rate-per-device 32 --duration 3s)
"$GEN" "${live[@]}" --rate 3226 >/dev/null 2>"$WORK/live1" || bad "live run 1 exit"
"$GEN" "${live[@]}" --rate 3000 >/dev/null 2>"$WORK/live2" || bad "live run 2 exit"
echo "# max_behind_ms: $(field max_behind_ms "$WORK/live1") at --rate 3226," \
     "$(field max_behind_ms "$WORK/live2") at --rate 3000"
no_warning() { ! grep -q rate_below_model "$1"; }
check "live: no warning when --rate allows the model's rate" \
        no_warning "$WORK/live1"
check "live: keeps up with the wall clock (max_behind_ms < 100)" \
        [ "$(field max_behind_ms "$WORK/live1")" -lt 100 ]
check "live: a --rate below the model's is warned of" \
        grep -q "msg=rate_below_model rate=3000 model_reports_per_s=3225" \
        "$WORK/live2"
check "live: and falls behind (max_behind_ms >= 100)" \
        [ "$(field max_behind_ms "$WORK/live2")" -ge 100 ]

# ---- kafka ---------------------------------------------------------------
broker_start --partitions-raw 8 || { echo "FAIL - broker_start"; exit 1; }
echo "# brokers: $TALLY_BROKERS"
kafka=(--devices 2000 --duration 30s --shapes all --batch 5 --malformed-share 0.02
       --seed 7)
"$GEN" "${kafka[@]}" --expect "$WORK/ek" --expect-dlq "$WORK/dk" \
        2>"$WORK/lk" || { bad "gen to kafka exit"; cat "$WORK/lk"; }
# the same run on stdout with the broker's partition count: same expectation
"$GEN" "${kafka[@]}" --out stdout --partitions 8 --expect "$WORK/es" \
        >/dev/null 2>&1 || bad "gen stdout twin exit"
check "kafka and stdout runs expect the same rollups" cmp -s "$WORK/ek" "$WORK/es"
msgs=$(field messages "$WORK/lk")
got=$(kcat -C -b "$TALLY_BROKERS" -t tally.raw -e -q -f '%o\n' | wc -l)
echo "# produced=$msgs consumed=$got"
check "kafka: every message arrived" [ -n "$msgs" ] && [ "$got" = "$msgs" ]
kcat -C -b "$TALLY_BROKERS" -t tally.raw -e -q -f '%k %p %T\n' >"$WORK/kp"
check "kafka: each device in exactly one partition" \
        [ "$(awk '{print $1, $2}' "$WORK/kp" | sort -u | awk '{print $1}' | uniq -d | wc -l)" = 0 ]
check "kafka: record timestamps within the run (2026-11-24, 30 s)" \
        awk '$3 < 1795478400000 || $3 >= 1795478430000 { bad = 1 } END { exit bad }' "$WORK/kp"

# unknown topic: an error, and not created by asking
if "$GEN" --topic-raw tally.nope --devices 1 --reports 1 2>"$WORK/ln"; then
        bad "unknown topic accepted"
else
        ok "unknown topic is an error"
fi
check "unknown topic not created" \
        bash -c "! kcat -L -b '$TALLY_BROKERS' | grep -q tally.nope"

# devbroker: signals take brokers down and up
broker_down
sleep 1
if timeout 10 kcat -L -b "$TALLY_BROKERS" -m 2 >/dev/null 2>&1; then
        bad "metadata while brokers are down"
else
        ok "brokers down on SIGUSR1"
fi
broker_up
sleep 1
check "brokers up on SIGUSR2" \
        bash -c "timeout 20 kcat -L -b '$TALLY_BROKERS' -m 10 -t tally.raw >/dev/null"
broker_stop
check "devbroker refuses 0 partitions" \
        bash -c "! '$TALLY_BIN/tally-devbroker' --partitions-dlq 0 >/dev/null 2>&1"

if [ "$fails" -ne 0 ]; then
        echo "$fails check(s) failed"
        exit 1
fi
echo "all checks passed"
