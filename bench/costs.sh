#!/usr/bin/env bash
# The data path's costs that do not depend on the machine's load, each beside its raw-OS baseline,
# for the current builds (build/native and build/win; build them first, e.g. with ninja):
#   - Wine: wineserver requests per 64-byte round trip (one thread, both ends on one poll; and
#     npipe between two threads with a poll each), from wineserver's WINEDEBUG=+server log, by
#     request name;
#   - Wine: private memory per idle connected pair (1,000 pairs on one poll);
#   - Linux: user-space instructions per round trip (valgrind's callgrind);
#   - Linux: system calls per round trip (strace -c), by call.
# Every per-round-trip figure is (long run - short run) / (rounds difference), so what a process
# costs to start and stop cancels out. A missing build or tool is skipped with a line saying why.
#
#   bench/costs.sh [--only wine|linux]
# Environment: NPIPE_BUILD_ROOT (as scripts/builds.sh), NPIPE_COSTS_WINEPREFIX (default
# $BUILD_ROOT/costs-wine: the request count needs a wineserver of its own, started fresh for each
# run, so it never shares one with tests), NPIPE_COSTS_PAIRS (default 1000).
set -uo pipefail
source "$(dirname "$0")/../scripts/builds.sh"

only=${2:-}
[ "${1:-}" = "--only" ] || only=""
native="$BUILD_ROOT/native/bench/costs"
win="$BUILD_ROOT/win/bench/costs.exe"
short=200
long=2200
pairs=${NPIPE_COSTS_PAIRS:-1000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

per_rt() {  # per_rt LONG_COUNT SHORT_COUNT
    awk -v a="$1" -v b="$2" -v d=$((long - short)) 'BEGIN { printf "%.1f", (a - b) / d }'
}

# ---- Wine ------------------------------------------------------------------------------------
wine_costs() {
    if [ ! -x "$win" ] || ! command -v wine >/dev/null; then
        echo "wine: skipped ($win not built, or no wine)"
        return
    fi
    export WINEPREFIX="${NPIPE_COSTS_WINEPREFIX:-$BUILD_ROOT/costs-wine}"
    export WINEPATH="$BUILD_ROOT/win"
    # A fresh wineserver per counted run: it logs every request of the runs it serves.
    serve_one() {  # serve_one LOG ARGS...: runs costs.exe ARGS under a new +server wineserver
        local log=$1
        shift
        WINEDEBUG=-all wineserver -k >/dev/null 2>&1
        timeout 30 wineserver -w >/dev/null 2>&1
        WINEDEBUG=+server wine "$win" "$@" 2>"$log" >/dev/null || {
            echo "wine: costs.exe $* failed: $(grep -m1 '^costs' "$log")"
            return 1
        }
        timeout 30 wineserver -w >/dev/null 2>&1
    }
    # The prefix exists before anything is counted (its creation is many requests).
    WINEDEBUG=-all wine cmd /c exit 0 >/dev/null 2>&1
    local what
    for what in npipe raw pp ppraw ppiocp react wait waitfirst tp tpraw tpiocp; do
        # pp: the same exchange between two threads with a poll each, beside two threads making
        # blocking calls (ppraw, npipe bench's raw) and two threads on a completion port each
        # (ppiocp, the completion model's floor); react: between two worker threads, each woken
        # by a reactor thread blocked on its end's poll (the .NET binding's shape); wait: between
        # two threads blocking in
        # npipe_wait, as the bindings' synchronous calls do (npipe only; waitfirst: waiting before
        # each read, as .NET does after a read that had to wait); tp: 64 KiB chunks one
        # way between two threads, npipe and the same two baselines.
        local mode prog label unit="per round trip  "
        case $what in
            npipe | raw) mode=rt prog=$what label=$what ;;
            pp | tp) mode=$what prog=npipe label="npipe, two threads" ;;
            ppraw | tpraw) mode=${what:0:2} prog=raw label="raw, two threads" ;;
            ppiocp | tpiocp) mode=${what:0:2} prog=iocp label="raw on ports, two threads" ;;
            react) mode=react prog=npipe label="npipe, reactor threads" ;;
            wait) mode=wait prog=npipe label="npipe_wait, two threads" ;;
            waitfirst) mode=wait prog=first label="npipe_wait first, two threads" ;;
        esac
        [ "$mode" = tp ] && unit="per 64 KiB chunk"
        serve_one "$tmp/$what.short" $mode $prog $short || return
        serve_one "$tmp/$what.long" $mode $prog $long || return
        # Request lines are "NNNN: name( ... )"; replies are "NNNN: name() = ...".
        for f in "$tmp/$what.short" "$tmp/$what.long"; do
            grep -E '^[0-9a-f]{4}: [a-z_]+\( ' "$f" | sed -E 's/^[0-9a-f]{4}: ([a-z_]+)\(.*/\1/' | sort | uniq -c \
                | awk '{ print $2, $1 }' | sort >"$f.names"
        done
        local total
        total=$(per_rt "$(awk '{ s += $2 } END { print s }' "$tmp/$what.long.names")" \
            "$(awk '{ s += $2 } END { print s }' "$tmp/$what.short.names")")
        local detail
        detail=$(join -a1 -a2 -e0 -o 0,1.2,2.2 "$tmp/$what.long.names" "$tmp/$what.short.names" \
            | awk -v d=$((long - short)) '{ v = ($2 - $3) / d; if (v >= 0.05) printf "%s %.1f, ", $1, v }' \
            | sed 's/, $//')
        printf 'wine   requests %s %-6s %5s   (%s)\n' "$unit" "$label" "$total" "$detail"
    done
    WINEDEBUG=-all wineserver -k >/dev/null 2>&1
    timeout 30 wineserver -w >/dev/null 2>&1
    WINEDEBUG=-all wineserver -p >/dev/null 2>&1
    for what in npipe raw0 raw64k; do
        local kib
        kib=$(WINEDEBUG=-all wine "$win" mem "$what" "$pairs" 2>"$tmp/mem.err") || {
            echo "wine: costs.exe mem $what failed: $(head -1 "$tmp/mem.err")"
            continue
        }
        printf 'wine   KiB private per idle pair %-6s %5s   (%s pairs on one poll)\n' "$what" "$(echo "$kib" | tr -d '\r')" "$pairs"
    done
    WINEDEBUG=-all wineserver -k >/dev/null 2>&1
    timeout 30 wineserver -w >/dev/null 2>&1
}

# ---- Linux -----------------------------------------------------------------------------------
linux_costs() {
    if [ ! -x "$native" ]; then
        echo "linux: skipped ($native not built)"
        return
    fi
    local what
    if command -v valgrind >/dev/null; then
        for what in npipe raw; do
            local a b
            a=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$native" rt "$what" $long 2>&1 \
                | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
            b=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$native" rt "$what" $short 2>&1 \
                | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
            printf 'linux  instructions per round trip %-6s %5s\n' "$what" "$(per_rt "$a" "$b")"
        done
    else
        echo "linux: instructions skipped (no valgrind: apt-get install valgrind)"
    fi
    if command -v strace >/dev/null; then
        for what in npipe raw react wait waitfirst; do
            local mode=rt prog=$what label=$what
            [ "$what" = react ] && mode=react prog=npipe label="npipe, reactor threads"
            [ "$what" = wait ] && mode=wait prog=npipe label="npipe_wait, two threads"
            [ "$what" = waitfirst ] && mode=wait prog=first label="npipe_wait first, two threads"
            strace -f -c -o "$tmp/sc.long" "$native" $mode $prog $long >/dev/null
            strace -f -c -o "$tmp/sc.short" "$native" $mode $prog $short >/dev/null
            for f in "$tmp/sc.long" "$tmp/sc.short"; do
                # Rows: % time, seconds, usecs/call, calls, [errors], syscall.
                awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $NF, $4 }' "$f" | sort >"$f.names"
            done
            local total detail
            total=$(per_rt "$(awk '{ s += $2 } END { print s }' "$tmp/sc.long.names")" \
                "$(awk '{ s += $2 } END { print s }' "$tmp/sc.short.names")")
            detail=$(join -a1 -a2 -e0 -o 0,1.2,2.2 "$tmp/sc.long.names" "$tmp/sc.short.names" \
                | awk -v d=$((long - short)) '{ v = ($2 - $3) / d; if (v >= 0.05) printf "%s %.1f, ", $1, v }' \
                | sed 's/, $//')
            printf 'linux  system calls per round trip %-6s %5s   (%s)\n' "$label" "$total" "$detail"
        done
    else
        echo "linux: system calls skipped (no strace: apt-get install strace)"
    fi
}

echo "costs of one 64-byte round trip and of an idle pair, npipe beside raw OS calls (bench/README.md)"
[ "$only" = "linux" ] || wine_costs
[ "$only" = "wine" ] || linux_costs
