#!/usr/bin/env bash
# Only the threaded suites under ThreadSanitizer (scripts/test.sh runs them too, among everything
# else). Ends with the same summary line as scripts/test.sh.
set -uo pipefail
source "$(dirname "$0")/builds.sh"
bash "$NPIPE_ROOT/scripts/install-deps.sh" || exit 1
configure_tsan && ninja -C "$BUILD_ROOT/tsan" || exit 1
meson test -C "$BUILD_ROOT/tsan" --print-errorlogs --num-processes 1 "${TSAN_SUITES[@]}"
python3 "$NPIPE_ROOT/scripts/summarize_tests.py" "$BUILD_ROOT/tsan"
