#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the demo natively and, as a Windows
# .exe, under Wine.
set -euo pipefail
source "$(dirname "$0")/builds.sh"
bash "$NPIPE_ROOT/scripts/install-deps.sh"
configure_native
configure_win
ninja -C "$BUILD_ROOT/native" >/dev/null
ninja -C "$BUILD_ROOT/win" >/dev/null

if [ -x "$BUILD_ROOT/native/tools/npipe" ]; then
    demo_native=("$BUILD_ROOT/native/tools/npipe" demo)
    demo_win=("$BUILD_ROOT/win/tools/npipe.exe" demo)
else
    demo_native=("$BUILD_ROOT/native/examples/hello_pipe")
    demo_win=("$BUILD_ROOT/win/examples/hello_pipe.exe")
fi
echo "== Linux (native) =="
"${demo_native[@]}"
echo
echo "== Windows (npipe.dll under Wine) =="
WINEDEBUG=-all WINEPATH="$BUILD_ROOT/win" wine "${demo_win[@]}"
