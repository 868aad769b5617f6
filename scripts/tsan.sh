#!/usr/bin/env bash
# The threaded suites under ThreadSanitizer (not part of CI's run: TSan doubles the build and
# slows the threaded cases several-fold). Ends with the same summary line as scripts/test.sh.
set -uo pipefail
source "$(dirname "$0")/builds.sh"
bash "$NPIPE_ROOT/scripts/install-deps.sh" || exit 1
configure_tsan && ninja -C "$BUILD_ROOT/tsan" || exit 1
meson test -C "$BUILD_ROOT/tsan" --print-errorlogs --num-processes 1 basics poll lifecycle stress tokio
python3 "$NPIPE_ROOT/scripts/summarize_tests.py" "$BUILD_ROOT/tsan"
