#!/usr/bin/env bash
# Every test suite there is: installs what is missing, builds the native, sanitizer and Windows
# (Wine) builds, runs all their tests, and ends with one summary line "N passed, N failed".
set -uo pipefail
source "$(dirname "$0")/builds.sh"
bash "$NPIPE_ROOT/scripts/install-deps.sh" || exit 1

status=0
run_build() {  # run_build NAME CONFIGURE-FUNCTION
    local name=$1 conf=$2
    echo "== $name: configure and build =="
    if ! $conf || ! ninja -C "$BUILD_ROOT/$name" ${NPIPE_JOBS:+-j "$NPIPE_JOBS"}; then
        echo "== $name: BUILD FAILED =="
        status=1
        return
    fi
    echo "== $name: test =="
    meson test -C "$BUILD_ROOT/$name" --print-errorlogs --num-processes 2 || status=1
}

run_build native configure_native
run_build asan configure_asan
run_build win configure_win

python3 "$NPIPE_ROOT/scripts/summarize_tests.py" "$BUILD_ROOT/native" "$BUILD_ROOT/asan" "$BUILD_ROOT/win" || status=1
exit $status
