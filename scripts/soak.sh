#!/usr/bin/env bash
# The long chaos run (issue 4): tests/crash/test_chaos.sh scaled up --
# tens of millions of readings streamed into tally-devbroker over a long
# run, two copies of each daemon, hundreds of SIGKILLs of random copies,
# repeated broker outages and PostgreSQL restarts; at the end every rollup
# row of every resolution is compared with tally-gen's computation and the
# dead letters with its counts. Prints what it did and what it found.
#
#   scripts/soak.sh [--readings N] [--kills K] [--duration SECONDS]
#                   [--devices N] [--seed S] [--outages N] [--bin DIR] [--keep]
#
#   --readings   readings to generate (default 20000000)
#   --kills      SIGKILLs over the run (default 300, at least 9)
#   --duration   wall-clock seconds the generator streams for, i.e. the
#                length of the kill loop (default 1800)
#   --devices    simulated devices (default 1000); the event time covered
#                is readings / (4 x devices) seconds
#   --outages    broker outages and PostgreSQL restarts, each (default
#                kills / 30, at least 1)
#   --seed       replays a run (default: random, printed)
#   --bin        the build's bin/ directory (default $TALLY_BIN or build/bin)
#   --keep       keep the logs of a failed run (path printed)
#
# Exit status 0 when every row and dead letter matched.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
readings=20000000 kills=300 duration=1800 devices=1000 seed= outages= keep=
bin=${TALLY_BIN:-$src/build/bin}
while [ $# -gt 0 ]; do
        case $1 in
        --readings) readings=$2; shift 2 ;;
        --kills) kills=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --devices) devices=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --outages) outages=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "soak.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        esac
done
for v in readings kills duration devices; do
        case ${!v} in ''|*[!0-9]*) echo "soak.sh: --$v wants a whole number" >&2; exit 2 ;; esac
done
[ "$kills" -ge 9 ] || { echo "soak.sh: --kills must be at least 9" >&2; exit 2; }
[ -x "$bin/tally-gen" ] || { echo "soak.sh: no tally binaries in $bin (build first, or --bin)" >&2; exit 2; }
seed=${seed:-$RANDOM}
outages=${outages:-$(( kills / 30 ))}
[ "$outages" -ge 1 ] || outages=1

# event time: 4 readings per report, one report per device per second
event_s=$(( (readings + 4 * devices - 1) / (4 * devices) ))
# tally-gen --shapes all --batch 5 writes about 7.6 readings per message
messages=$(( readings * 10 / 76 ))
rate=$(( messages / duration + 1 ))
# kills: test_chaos.sh sleeps 2 + U[0, INTERVAL) + U[0, 1) s between kills,
# the outages add about 7 + 6 s each
per_kill=$(( (duration - 13 * outages) / kills ))
interval=$(( 2 * (per_kill - 2) ))
[ "$interval" -ge 1 ] || interval=1
# the devbroker keeps 5 MiB (compressed) per partition: about 10 bytes a
# reading after zstd, with a 2x margin
raw_parts=$(( readings * 20 / (5 * 1024 * 1024) + 1 ))
[ "$raw_parts" -ge 16 ] || raw_parts=16
wait_s=$(( 480 + duration / 4 ))

cat <<INFO
soak: seed=$seed readings=$readings devices=$devices event_time=${event_s}s
soak: generator ~$messages messages at $rate/s (~${duration}s), $kills kills
soak: (one every ~$((2 + interval / 2))s), $outages broker outage(s),
soak: $outages PostgreSQL restart(s), $raw_parts raw partitions, settle wait ${wait_s}s
INFO
t0=$(date +%s)
out=$(mktemp "${TMPDIR:-/tmp}/tally-soak.XXXXXX")
rc=0
TALLY_BIN=$bin TALLY_SRC=$src TALLY_TEST_SEED=$seed \
CHAOS_NAME=soak CHAOS_DEVICES=$devices CHAOS_DURATION=${event_s}s \
CHAOS_RATE=$rate CHAOS_KILLS=$kills CHAOS_INTERVAL=$interval \
CHAOS_WAIT=$wait_s CHAOS_BROKER_OUTAGES=$outages CHAOS_PG_RESTARTS=$outages \
CHAOS_BROKER_ARGS="--partitions-raw $raw_parts" \
TALLY_TEST_LOG_LEVEL=${TALLY_TEST_LOG_LEVEL:-info} TALLY_TEST_KEEP=$keep \
        bash "$src/tests/crash/test_chaos.sh" 2>&1 | tee "$out" || rc=$?

echo "==== soak summary ===="
echo "seed=$seed wall=$(( $(date +%s) - t0 ))s"
grep -E '^(readings|kills|broker outages|postgresql outages|kill loop|raw topic|postgresql:|dead letters)' "$out" || true
if [ "$rc" = 0 ]; then
        echo "found: nothing lost, nothing counted twice (every row and dead letter as expected)"
else
        echo "found: FAILURE (exit $rc); the lines above show what differed:"
        grep -E 'FAILED|differ|died by itself|exited' "$out" | head -n 20 || true
fi
rm -f "$out"
exit "$rc"
