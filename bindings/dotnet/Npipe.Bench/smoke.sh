#!/bin/sh
# Keeps the benchmark of issue 17 working: builds Npipe.Bench and runs it once at a tenth of its
# sizes (--quick --rounds 1), natively against libnpipe.so.1 or, given npipe.dll, published
# self-contained for win-x64 and run under Wine. It checks the output's shape, never a time: every
# row printed with a ratio, its median and its CPU ratio (under Wine also the one with the
# wineserver's CPU, so WineServerCpu found the wineserver), and both allocation lines.
# Usage: smoke.sh <libnpipe.so.1 | npipe.dll> <work dir>
set -eu
lib=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
log="$work/bench-smoke.log"
mkdir -p "$work"
status=0 # the bench's exit status: its output is shown either way
case "$lib" in
*.dll)
    export WINEDEBUG="${WINEDEBUG:--all}" WINEPREFIX="${WINEPREFIX:-$HOME/.wine-npipe}"
    out="$work/bench-win-x64"
    dotnet publish "$here/Npipe.Bench.csproj" -r win-x64 --self-contained -c Release \
        -m:1 -p:BuildInParallel=false --artifacts-path "$work/artifacts" -o "$out" --nologo -v quiet
    cp "$lib" "$out/npipe.dll"
    unset NPIPE_LIBRARY # found beside the exe, as an application would ship it
    (cd "$out" && wine Npipe.Bench.exe --quick --rounds 1) >"$log.raw" 2>&1 || status=$?
    tr -d '\r' <"$log.raw" >"$log"
    columns=6 # mean times, the ratio, median, CPU, +server
    ;;
*)
    out="$work/bench"
    dotnet build "$here/Npipe.Bench.csproj" -c Release \
        -m:1 -p:BuildInParallel=false --artifacts-path "$work/artifacts" -o "$out" --nologo -v quiet
    NPIPE_LIBRARY=$lib "$out/Npipe.Bench" --quick --rounds 1 >"$log" 2>&1 || status=$?
    columns=5
    ;;
esac
cat "$log"
if [ "$status" -ne 0 ]; then
    echo "bench smoke: Npipe.Bench exited with status $status"
    exit 1
fi
# A row: its name, the two mean times, the ratios (one round: one), the median, the CPU ratio(s):
# `columns` numbers.
rows=$(grep -cE "^[0-9]+ (MiB in|async ping-pongs|clients x|sync Read/Write).* [0-9]+\.[0-9]+( +[0-9]+\.[0-9]+){$((columns - 1))}$" "$log" || true)
allocations=$(grep -cE "^allocated per (async|sync) round trip \(64 B each way\): npipe [0-9]+ B, System.IO.Pipes [0-9]+ B$" "$log" || true)
if [ "$rows" -ne 4 ] || [ "$allocations" -ne 2 ]; then
    echo "bench smoke: expected 4 rows of $columns numbers and 2 allocation lines, found $rows and $allocations"
    exit 1
fi
echo "bench smoke: 4 rows, 2 allocation lines"
