#!/usr/bin/env bash
# What waiting for a pipe server costs, natively and under Wine, in one run, side by side:
#   - the CPU time a process uses while its open waits WAIT_MS (default 2000) for a server that
#     never comes: npipe's non-blocking and blocking open (`npipe bench open`), .NET's
#     NamedPipeClientStream.Connect / ConnectAsync and NpipeStream.ConnectAsync
#     (`Npipe.SelfTest --measure-open`);
#   - the delay from the server's npipe_create (Windows also: a busy instance's disconnect) to the
#     client's NPIPE_CONNECTED over TRIALS trials (default 50): p50, p99, max.
# Under Wine a process's own CPU time leaves out the work wineserver does for it, so the wineserver
# CPU of each Wine run is printed too (and of a run that waits 0 ms, for comparison).
# Numbers only: nothing here passes or fails. Usage: scripts/measure_open.sh [WAIT_MS] [TRIALS]
set -euo pipefail
source "$(dirname "$0")/builds.sh"
wait_ms=${1:-2000}
trials=${2:-50}
export WINEPREFIX="${WINEPREFIX:-$HOME/.wine-npipe}" WINEDEBUG=-all
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 MSBUILDDISABLENODEREUSE=1
dotnet_dir="$NPIPE_ROOT/bindings/dotnet"

configure_native && ninja -C "$BUILD_ROOT/native" ${NPIPE_JOBS:+-j "$NPIPE_JOBS"} >/dev/null
configure_win && ninja -C "$BUILD_ROOT/win" ${NPIPE_JOBS:+-j "$NPIPE_JOBS"} >/dev/null

# CPU seconds used so far by this prefix's wineserver (0 when none runs).
wineserver_cpu() {
    local pid
    for pid in $(pgrep wineserver || true); do
        if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "WINEPREFIX=$WINEPREFIX"; then
            awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f\n", ($14 + $15) / hz }' "/proc/$pid/stat"
            return
        fi
    done
    echo 0
}

# Runs a Wine command and prints its output, then the wineserver CPU it cost.
under_wine() {
    local before after
    before=$(wineserver_cpu)
    "$@" | tr -d '\r'
    after=$(wineserver_cpu)
    awk -v a="$after" -v b="$before" '{ }END{ printf "        wineserver CPU during that run: %.1f ms\n", (a - b) * 1000 }' </dev/null
}

echo "== Linux (native)"
"$BUILD_ROOT/native/tools/npipe" bench open --wait-ms "$wait_ms" --trials "$trials"
dotnet build "$dotnet_dir/Npipe.SelfTest/Npipe.SelfTest.csproj" -c Release -m:1 -p:BuildInParallel=false \
    --artifacts-path "$BUILD_ROOT/native/bindings/dotnet/artifacts" --nologo -v quiet >/dev/null
NPIPE_LIBRARY="$BUILD_ROOT/native/libnpipe.so.1" \
    dotnet "$BUILD_ROOT/native/bindings/dotnet/artifacts/bin/Npipe.SelfTest/release/Npipe.SelfTest.dll" \
    --measure-open "$wait_ms"

echo "== Windows (Wine $(wine --version 2>/dev/null))"
# One wineserver for every run below (so its CPU counter is one), kept 60 s past its last client.
wineserver -p60 >/dev/null 2>&1 </dev/null &
export WINEPATH="$BUILD_ROOT/win"
under_wine wine "$BUILD_ROOT/win/tools/npipe.exe" bench open --only wait --wait-ms 0
under_wine wine "$BUILD_ROOT/win/tools/npipe.exe" bench open --only wait --wait-ms "$wait_ms"
under_wine wine "$BUILD_ROOT/win/tools/npipe.exe" bench open --only appear,busy --trials "$trials"
out="$BUILD_ROOT/win/bindings/dotnet/selftest-win-x64"
dotnet publish "$dotnet_dir/Npipe.SelfTest/Npipe.SelfTest.csproj" -r win-x64 --self-contained -c Release \
    -m:1 -p:BuildInParallel=false --artifacts-path "$BUILD_ROOT/win/bindings/dotnet/artifacts" -o "$out" \
    --nologo -v quiet >/dev/null
cp "$BUILD_ROOT/win/npipe.dll" "$out/npipe.dll"
(cd "$out" && under_wine wine Npipe.SelfTest.exe --measure-open "$wait_ms")
