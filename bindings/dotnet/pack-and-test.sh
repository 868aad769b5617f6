#!/bin/sh
# Packs the Npipe NuGet package with the given natives, then builds and runs Npipe.PackageTest,
# which references the package (not the project) from a local folder feed.
# Usage: pack-and-test.sh <libnpipe.so.1 or -> <npipe.dll or -> <work dir>
# With a npipe.dll, the package test is also published self-contained for win-x64 and run under Wine.
set -eu
so=$1
dll=$2
work=$3
here=$(cd "$(dirname "$0")" && pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
unset NPIPE_LIBRARY   # the natives must come from the package
feed="$work/feed"
rm -rf "$feed" "$work/packages" "$work/package-test"
mkdir -p "$feed"

# The package carries the natives without their debug information, as the Python wheels do:
# the meson builds keep it (debugoptimized), which made the packed libnpipe.so 4.7 MB.
natives="$work/natives"
rm -rf "$natives"
mkdir -p "$natives"
stripped() {  # stripped FILE STRIP-PROGRAM: prints the path of a debug-stripped copy of FILE
    copy="$natives/$(basename "$1")"
    cp "$1" "$copy"
    if command -v "$2" >/dev/null 2>&1; then "$2" --strip-debug "$copy"; fi
    echo "$copy"
}
props=""
[ "$so" = "-" ] || props="$props -p:NpipeNativeLinux=$(stripped "$so" strip)"
[ "$dll" = "-" ] || props="$props -p:NpipeNativeWindows=$(stripped "$dll" x86_64-w64-mingw32-strip)"
echo "== dotnet pack Npipe without a native library must fail, and say why"
if dotnet pack "$here/Npipe/Npipe.csproj" -c Release -m:1 -p:BuildInParallel=false \
        --artifacts-path "$work/artifacts" -o "$feed" --nologo -v quiet >"$work/pack-no-natives.log" 2>&1; then
    echo "FAIL: dotnet pack without -p:NpipeNativeLinux/-p:NpipeNativeWindows succeeded"
    exit 1
fi
grep -F "No native library to pack" "$work/pack-no-natives.log"
if ls "$feed"/*.nupkg >/dev/null 2>&1; then
    echo "FAIL: a package was made without natives"
    exit 1
fi

echo "== dotnet pack Npipe$props"
# shellcheck disable=SC2086
dotnet pack "$here/Npipe/Npipe.csproj" -c Release -m:1 -p:BuildInParallel=false $props \
    --artifacts-path "$work/artifacts" -o "$feed" --nologo -v quiet
nupkg=$(ls "$feed"/Npipe.*.nupkg | head -n 1)
version=$(basename "$nupkg" .nupkg)
version=${version#Npipe.}
echo "== $(basename "$nupkg") (version $version):"
# The library's version from meson.build, then a local build suffix (Npipe.csproj).
lib_version=$(sed -n "s/^ *version: '\([0-9.]*\)',\$/\1/p" "$here/../../meson.build" | head -n 1)
case "$version" in
    "$lib_version"-local.[0-9]*) ;;
    *) echo "FAIL: package version $version is not $lib_version-local.<time>"; exit 1 ;;
esac
python3 - "$nupkg" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for info in sorted(z.infolist(), key=lambda i: i.filename):
    if info.filename.startswith(("lib/", "runtimes/")):
        print(f"  {info.filename} ({info.file_size:,} bytes)")
    if info.filename.startswith("runtimes/"):
        assert b".debug_info" not in z.read(info.filename), f"{info.filename} carries debug information"
PY
echo "== the XML documentation is packed, and a rebuild (--no-incremental) gives the same Npipe.Net.dll"
python3 - "$nupkg" "$work/packed-dll" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
assert "lib/net8.0/Npipe.Net.xml" in names, "no lib/net8.0/Npipe.Net.xml in the package"
assert "<member name=\"T:Npipe.NpipeListener\">" in z.read("lib/net8.0/Npipe.Net.xml").decode(), "NpipeListener undocumented"
open(sys.argv[2], "wb").write(z.read("lib/net8.0/Npipe.Net.dll"))
print("  lib/net8.0/Npipe.Net.xml documents NpipeListener")
PY
# Same place (the dll names its pdb's path), compiled again from scratch.
dotnet build "$here/Npipe/Npipe.csproj" -c Release -m:1 -p:BuildInParallel=false --no-incremental \
    --artifacts-path "$work/artifacts" --nologo -v quiet >"$work/rebuild.log"
again=$(find "$work/artifacts/bin/Npipe" -name Npipe.Net.dll | head -n 1)
if cmp -s "$work/packed-dll" "$again"; then
    echo "  identical: $(sha256sum "$again" | cut -c1-16)"
else
    echo "FAIL: Npipe.Net.dll differs between two Release builds of the same sources ($again)"
    exit 1
fi

restore="-p:RestoreAdditionalProjectSources=$feed -p:RestorePackagesPath=$work/packages -p:NpipeVersion=$version"
if [ "$so" != "-" ]; then
    echo "== dotnet run Npipe.PackageTest (linux-x64, package reference)"
    # shellcheck disable=SC2086
    dotnet build "$here/Npipe.PackageTest/Npipe.PackageTest.csproj" -c Release -m:1 $restore \
        --artifacts-path "$work/artifacts" -o "$work/package-test/linux" --nologo -v quiet
    ls "$work/package-test/linux/runtimes/linux-x64/native/"
    dotnet "$work/package-test/linux/Npipe.PackageTest.dll"
fi
if [ "$dll" != "-" ] && command -v wine >/dev/null 2>&1; then
    echo "== Npipe.PackageTest published self-contained for win-x64, under Wine"
    # shellcheck disable=SC2086
    dotnet publish "$here/Npipe.PackageTest/Npipe.PackageTest.csproj" -r win-x64 --self-contained -c Release -m:1 \
        $restore --artifacts-path "$work/artifacts" -o "$work/package-test/win-x64" --nologo -v quiet
    export WINEDEBUG="${WINEDEBUG:--all}" WINEPREFIX="${WINEPREFIX:-$HOME/.wine-npipe}"
    out=$(cd "$work/package-test/win-x64" && wine Npipe.PackageTest.exe 2>&1 | tr -d '\r')
    printf "%s\n" "$out"
    printf "%s\n" "$out" | grep -qx done
fi
