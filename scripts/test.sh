#!/usr/bin/env bash
# Every test suite there is: installs what is missing, builds the native, sanitizer (ASan+UBSan,
# ThreadSanitizer), fuzz and Windows (Wine) builds, runs all their tests, and ends with one summary
# line "N passed, N failed".
set -uo pipefail
source "$(dirname "$0")/builds.sh"
bash "$NPIPE_ROOT/scripts/install-deps.sh" || exit 1

status=0
wine_up=0
# The persistent wineserver goes away with the script, also when it is interrupted.
on_exit() { [ "$wine_up" -eq 0 ] || wineserver_stop; }
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

build() {  # build NAME CONFIGURE-FUNCTION
    local name=$1 conf=$2
    echo "== $name: configure and build (at ${SECONDS}s) =="
    if ! $conf || ! ninja -C "$BUILD_ROOT/$name" ${NPIPE_JOBS:+-j "$NPIPE_JOBS"}; then
        echo "== $name: BUILD FAILED =="
        status=1
        return 1
    fi
}
run_tests() {  # run_tests NAME [meson test arguments...]
    local name=$1
    shift
    echo "== $name: test (at ${SECONDS}s) =="
    meson test -C "$BUILD_ROOT/$name" --print-errorlogs --num-processes 2 "$@" || status=1
}

build native configure_native && run_tests native
build asan configure_asan && run_tests asan
# The libFuzzer target for a bounded time (NPIPE_FUZZ_SECONDS, default 60): one test.
build fuzz configure_fuzz && run_tests fuzz
# The threaded suites under ThreadSanitizer, one at a time (TSan slows them several-fold).
build tsan configure_tsan && run_tests tsan --num-processes 1 "${TSAN_SUITES[@]}"
if build win configure_win; then
    if wineserver_start; then
        wine_up=1
        run_tests win
        wineserver_stop
        wine_up=0
    else
        status=1
    fi
fi

echo "== done (at ${SECONDS}s) =="
python3 "$NPIPE_ROOT/scripts/summarize_tests.py" "$BUILD_ROOT/native" "$BUILD_ROOT/asan" "$BUILD_ROOT/fuzz" \
    "$BUILD_ROOT/tsan" "$BUILD_ROOT/win" || status=1
exit $status
