#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds tally twice (as
# released, and with AddressSanitizer + UndefinedBehaviorSanitizer), runs
# the unit, fuzz-corpus and integration tests in both builds, the crash
# tests (minutes of kills and outages) once, under the sanitizers, and a
# quick run of bench/run once, on the release build.
# Usage: scripts/test.sh [ctest args, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
rc=0
for variant in release asan; do
        dir=build; [ "$variant" = asan ] && dir=build-asan
        flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
        [ "$variant" = asan ] && flags+=(-DTALLY_SANITIZE=ON)
        echo "=== $variant build"
        cmake -S . -B "$dir" "${flags[@]}" >/dev/null
        cmake --build "$dir" -j "$jobs" 2>&1 | grep -E "error|warning|Error" || true
        cmake --build "$dir" -j "$jobs" >/dev/null
        echo "=== $variant tests"
        select=("$@")
        [ $# -eq 0 ] && [ "$variant" = release ] && select=(-LE crash)
        # bench/run's smoke run once, on the release build (sanitized
        # daemons would only make it slower)
        [ $# -eq 0 ] && [ "$variant" = asan ] && select=(-LE bench)
        # any sanitizer report (leaks included) fails the test
        ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
        LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
                ctest --test-dir "$dir" --output-on-failure "${select[@]}" || rc=1
done
exit $rc
