#!/usr/bin/env bash
# Builds the Python binding's platform wheels, each carrying the library (no PyPI, no setuptools:
# the package's own stdlib-only backend): from build/native a linux_<arch> wheel with
# libnpipe.so.1, and, when the mingw-w64 cross toolchain is there, from build/win a win_amd64
# wheel with npipe.dll. Both land in build/wheels. Install one into a venv:
#   python3 -m venv .venv && .venv/bin/pip install build/wheels/npipe-*-linux_x86_64.whl
set -euo pipefail
source "$(dirname "$0")/builds.sh"
out="$BUILD_ROOT/wheels"
mkdir -p "$out/lib"

wheel() {  # wheel LIBRARY STRIP-PROGRAM: a debug-stripped copy of LIBRARY goes into the wheel
    local lib=$1 strip=$2 copy="$out/lib/$(basename "$1")"
    cp "$lib" "$copy"
    if command -v "$strip" >/dev/null 2>&1; then "$strip" --strip-debug "$copy"; fi
    NPIPE_BUNDLE_LIBRARY="$copy" PIP_DISABLE_PIP_VERSION_CHECK=1 \
        python3 -m pip wheel --no-index --no-deps -q -w "$out" "$NPIPE_ROOT/bindings/python"
}

configure_native
ninja -C "$BUILD_ROOT/native" ${NPIPE_JOBS:+-j "$NPIPE_JOBS"} libnpipe.so.1
wheel "$BUILD_ROOT/native/libnpipe.so.1" strip
if command -v x86_64-w64-mingw32-g++-posix >/dev/null 2>&1; then
    configure_win
    ninja -C "$BUILD_ROOT/win" ${NPIPE_JOBS:+-j "$NPIPE_JOBS"} npipe.dll
    wheel "$BUILD_ROOT/win/npipe.dll" x86_64-w64-mingw32-strip
fi
rm -rf "$out/lib"
ls -1 "$out"/npipe-*.whl
