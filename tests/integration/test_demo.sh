#!/usr/bin/env bash
# The README's demo command runs and says what it should: the rollups are
# in PostgreSQL and equal to tally-gen's computation, a SQL query shows
# rows of tally.rollup_1m, and the closing counts line is complete.
set -euo pipefail
: "${TALLY_BIN:?}" "${TALLY_SRC:?}"
out=$(DEMO_DEVICES=100 DEMO_DURATION=120s bash "$TALLY_SRC/scripts/demo.sh" 2>&1) || {
        echo "$out"
        exit 1
}
echo "$out"
grep -q "all rollups in PostgreSQL and equal to tally-gen's computation" <<<"$out"
grep -q "FROM tally.rollup_1m" <<<"$out"
grep -Eq '^ site-[0-9]+ +\| dev-[0-9]+ +\|' <<<"$out"
grep -Eq '^\(1?[0-9] rows\)' <<<"$out"
grep -Eq '^reports=[1-9][0-9]* points=[1-9][0-9]* rejected=[1-9][0-9]* rollup_rows_1m=[1-9][0-9]* rollup_rows_1h=[1-9][0-9]*$' <<<"$out"
echo "test_demo: ok"
