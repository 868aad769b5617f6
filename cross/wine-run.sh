#!/bin/sh
# exe_wrapper for the mingw cross build: runs a Windows program under Wine, quietly, in the
# prefix named by WINEPREFIX (default: a per-user one kept beside the build, created on first use).
# WINEPATH lets Windows programs find npipe.dll in the build root.
: "${WINEPREFIX:=${HOME:-/root}/.wine-npipe}"
export WINEPREFIX
export WINEDEBUG="${WINEDEBUG:--all}"
exec wine "$@"
