#!/usr/bin/env bash
# The libFuzzer target over the C API for longer than CI's minute (scripts/test.sh runs it for 60 s):
#   bash scripts/fuzz.sh [SECONDS]      (default 600)
# New inputs it finds stay in build/fuzz/tests/fuzz/run/corpus for the next run; a failing input is
# written next to it and named in the output. Replay one with build/fuzz/tests/fuzz/npipe_fuzz_api FILE
# (NPIPE_FUZZ_TRACE=1 prints each operation and call). A seed worth keeping goes to tests/fuzz/corpus.
set -euo pipefail
source "$(dirname "$0")/builds.sh"
bash "$NPIPE_ROOT/scripts/install-deps.sh"
configure_fuzz
ninja -C "$BUILD_ROOT/fuzz"
NPIPE_FUZZ_SECONDS="${1:-600}" sh "$NPIPE_ROOT/tests/fuzz/run.sh" "$BUILD_ROOT/fuzz/tests/fuzz/npipe_fuzz_api" \
    "$NPIPE_ROOT/tests/fuzz/corpus" "$BUILD_ROOT/fuzz/tests/fuzz/run"
