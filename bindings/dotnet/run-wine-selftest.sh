#!/bin/sh
# Builds Npipe.SelfTest as a self-contained win-x64 program (runtime pack from NuGet), puts the
# cross-built npipe.dll beside it and runs it under Wine, so the IOCP backend is exercised from .NET
# through P/Invoke. Usage: run-wine-selftest.sh <path/to/npipe.dll> <work dir> [scenario filter...]
# Exit status: 0 only if the program printed "N passed, 0 failed" with N > 0.
set -eu
dll=$1
work=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
out="$work/selftest-win-x64"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export WINEDEBUG="${WINEDEBUG:--all}" WINEPREFIX="${WINEPREFIX:-$HOME/.wine-npipe}"

echo "== dotnet publish Npipe.SelfTest -r win-x64 --self-contained -> $out"
dotnet publish "$here/Npipe.SelfTest/Npipe.SelfTest.csproj" -r win-x64 --self-contained -c Release \
    -m:1 -p:BuildInParallel=false --artifacts-path "$work/artifacts" -o "$out" --nologo -v quiet
cp "$dll" "$out/npipe.dll"
unset NPIPE_LIBRARY   # found beside the exe (default search), as an application would ship it

echo "== wine Npipe.SelfTest.exe $*"
log="$work/selftest-win-x64.log"
status=0
(cd "$out" && wine Npipe.SelfTest.exe "$@") >"$log.raw" 2>&1 || status=$?
tr -d '\r' <"$log.raw" >"$log"   # Windows console lines end in CRLF
# The program's own lines come first; a Wine crash dump after them can be long.
head -n 200 "$log"
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
if [ -z "$summary" ]; then
    echo "no summary line from the program (exit status $status)"
    [ "$(wc -l <"$log")" -le 200 ] || tail -n 40 "$log"
    exit 1
fi
passed=${summary%% passed*}
failed=${summary#*passed, }
failed=${failed%% failed}
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] && [ "$status" -eq 0 ]
