#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the demo natively and, as a Windows
# .exe, under Wine. Says what it is doing at each step; a failing step shows its output.
set -euo pipefail
source "$(dirname "$0")/builds.sh"

step() { echo "== demo: $*"; }
# Runs a quiet step; on failure prints what it said and stops.
quietly() {  # quietly DESCRIPTION COMMAND...
    local what=$1 log
    shift
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        cat "$log"
        rm -f "$log"
        echo "== demo: FAILED: $what"
        exit 1
    fi
    rm -f "$log"
}

step "checking for the tools a build needs (installs what a fresh Debian 12 lacks)"
bash "$NPIPE_ROOT/scripts/install-deps.sh"
for build in native win; do
    step "configuring $BUILD_ROOT/$build"
    quietly "meson setup of $build" "configure_$build"
    # ninja prints one line per compiled file: on a fresh machine the two builds take minutes.
    step "building $BUILD_ROOT/$build"
    ninja -C "$BUILD_ROOT/$build" || { echo "== demo: FAILED: the $build build (errors above)"; exit 1; }
done

if [ -x "$BUILD_ROOT/native/tools/npipe" ]; then
    demo_native=("$BUILD_ROOT/native/tools/npipe" demo)
    demo_win=("$BUILD_ROOT/win/tools/npipe.exe" demo)
else
    demo_native=("$BUILD_ROOT/native/examples/hello_pipe")
    demo_win=("$BUILD_ROOT/win/examples/hello_pipe.exe")
fi
echo
echo "== Linux (native) =="
"${demo_native[@]}"
echo
echo "== Windows (npipe.dll under Wine) =="
WINEDEBUG=-all WINEPATH="$BUILD_ROOT/win" wine "${demo_win[@]}"
