#!/usr/bin/env bash
# The command line of every program: --help lists every option with its
# default and exits 0; a wrong value is one line naming the option and
# exit 2; docs/config.md is current with the option tables; tally-decode
# reads both clean format versions.
set -euo pipefail
: "${TALLY_BIN:?}" "${TALLY_SRC:?}"
fail() { echo "test_cli: $*" >&2; exit 1; }
for p in ingest aggregate store gen devbroker decode; do
        out=$("$TALLY_BIN/tally-$p" --help) || fail "tally-$p --help exited non-zero"
        grep -q -- "--threads\|--brokers" <<<"$out" || fail "tally-$p --help lists no options"
        n_opts=$(grep -c '^  --' <<<"$out")
        n_defs=$(grep -c 'default:' <<<"$out")
        [ $((n_opts - 1)) -eq "$n_defs" ] || fail "tally-$p: an option has no default shown"
        for bad in "--threads=zero" "--no-such-option=1" "--disorder=5 parsecs"; do
                case "$p:$bad" in
                decode:--threads*|decode:--disorder*) continue ;;
                esac
                set +e
                err=$("$TALLY_BIN/tally-$p" "$bad" 2>&1 >/dev/null)
                rc=$?
                set -e
                [ "$rc" = 2 ] || fail "tally-$p $bad: exit $rc, expected 2"
                [ "$(wc -l <<<"$err")" = 1 ] || fail "tally-$p $bad: more than one line: $err"
                opt=${bad%%=*}
                grep -q -- "$opt" <<<"$err" || fail "tally-$p $bad: error does not name $opt: $err"
        done
        # environment: a bad TALLY_* value names the variable
        set +e
        err=$(TALLY_THREADS=lots "$TALLY_BIN/tally-$p" --help 2>&1 >/dev/null)
        rc=$?
        set -e
        if [ "$p" != devbroker ] && [ "$p" != decode ]; then
                [ "$rc" = 2 ] && grep -q TALLY_THREADS <<<"$err" ||
                        fail "tally-$p: TALLY_THREADS=lots gave exit $rc: $err"
        fi
done
# tally-decode reads both clean format versions and names each
corpus="$TALLY_SRC/tests/fuzz/corpus/clean"
for v in "readings 1 4" "readings-v2 2 12"; do
        set -- $v
        out=$("$TALLY_BIN/tally-decode" --file "$corpus/$1") || fail "tally-decode $1 failed"
        grep -q "\"version\":$2,\"kind\":\"readings\"" <<<"$out" || fail "tally-decode $1: not version $2: $out"
        n=$(grep -o '"origin":' <<<"$out" | wc -l)
        [ "$n" = "$3" ] || fail "tally-decode $1: $n readings, expected $3"
done
if "$TALLY_BIN/tally-decode" --file "$corpus/bad-magic" >/dev/null 2>&1; then
        fail "tally-decode accepted a record with a bad magic"
fi
# the configuration document comes from the same tables
if ! diff -u "$TALLY_SRC/docs/config.md" <(bash "$TALLY_SRC/scripts/config-doc.sh" "$TALLY_BIN"); then
        fail "docs/config.md is stale: run scripts/config-doc.sh build/bin > docs/config.md"
fi
echo "test_cli: ok"
