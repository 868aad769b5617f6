#!/bin/bash
# Wineserver requests of one run of one Npipe.Bench row (each is a kernel transition on Windows), a
# count that does not move with the machine's load as Wine's timings do.
#
#   wine-requests.sh OUT ROW npipe|sip [--quick]
#
# OUT: Npipe.Bench published self-contained for win-x64 with npipe.dll beside it (the README's
# "under Wine" line). It runs the row once and three times (--only), each with a fresh wineserver
# and WINEDEBUG=+server, and prints (three runs - one run) / 2, in all and per request kind
# (those above 100). It stops the wineserver of $WINEPREFIX: give it a prefix of its own.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 OUT ROW npipe|sip [--quick]" >&2; exit 2; }
out=$1 row=$2 impl=$3 quick=${4:-}
: "${WINEPREFIX:?set WINEPREFIX to a prefix of its own}"
work=$(mktemp -d)
trap 'rm -rf "$work"; wineserver -k 2>/dev/null || true' EXIT
for n in 1 3; do
    wineserver -k 2>/dev/null || true
    wineserver -w 2>/dev/null || true
    # Requests only: the log also has a line per reply ("name() = ...") and per descriptor passed.
    (cd "$work" && WINEDEBUG=+server timeout 900 wine "$out/Npipe.Bench.exe" $quick --only "$row" "$impl" "$n" \
        </dev/null 2>"$work/log" >"$work/stdout")
    sed -E -n '/\) = /d; s/^[0-9a-f]+: ([a-z_]+)\(.*/\1/p' "$work/log" | sort | uniq -c >"$work/by.$n"
done
total() { awk '{s += $1} END {print s}' "$1"; }
echo "row $row, $impl: $(( ($(total "$work/by.3") - $(total "$work/by.1")) / 2 )) requests per run"
join -1 2 -2 2 -a 2 -e 0 -o 0,1.1,2.1 <(sort -k2 "$work/by.1") <(sort -k2 "$work/by.3") |
    awk '{d = ($3 - $2) / 2; if (d > 100) printf "  %-24s %8.0f\n", $1, d}' | sort -k2 -rn
