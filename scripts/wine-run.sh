#!/usr/bin/env bash
# wine-run.sh PROGRAM [ARGS...]: runs one Windows test under Wine, as the cross file's wrapper does
# (cross/mingw-w64-x86_64.ini calls this when NPIPE_WINE_RUN names it; scripts/builds.sh does).
#
# When the wineserver dies while a test runs, every Wine program of the prefix ends with it, and
# how it ends says nothing about the test: a doctest executable cut off that way exits 0 having
# printed nothing. So a test whose server is gone or replaced when it ends runs once more, after
# a line on stderr saying why, on a server started afresh, and that second run's result is the
# test's. A test whose server lived through it keeps its result, except a doctest run that exits
# 0 without doctest's summary, which fails (below). tools/tests/test_tool.py applies
# the same rule to failing tool tests. WINE and WINESERVER name other programs to run
# (scripts/tests/test_wine_run.py runs stand-ins).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/builds.sh"
export WINEDEBUG="${WINEDEBUG:--all}"

# The pid of the wineserver of WINEPREFIX, or nothing (the rule is scripts/wineserver_pid.py's).
wineserver_pid() {
    python3 "$(dirname "${BASH_SOURCE[0]}")/wineserver_pid.py" "$WINEPREFIX"
}

# A doctest program (its file carries doctest's "[doctest] " lines) that ran to its end printed
# "[doctest] Status: SUCCESS!" or FAILURE. Exiting 0 without it, it was cut off from outside (a
# wineserver that went down, or `wineserver -k`, which ends the clients before the server): that
# run did not test anything, and counts as a failure.
is_doctest=false
grep -q -a -F '[doctest] ' "$1" 2>/dev/null && is_doctest=true
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Runs the test; its exit code in rc. The output goes to a file (Wine's programs and a wineserver
# they start may keep a pipe open long after), then on.
run_test() {
    "${WINE:-wine}" "$@" >"$out"
    rc=$?
    cat "$out"
    if $is_doctest && [ "$rc" -eq 0 ] && ! grep -q -F '[doctest] Status: SUCCESS!' "$out"; then
        echo "wine-run: the test exited 0 without doctest's summary: it was cut off, which counts as a failure" >&2
        rc=1
    fi
}

before=$(wineserver_pid)
run_test "$@"
if [ -z "$before" ] || [ "$(wineserver_pid)" = "$before" ]; then
    exit "$rc"
fi
echo "wine-run: again: the wineserver (pid $before) died during the test, which ended with exit $rc; running it once more on a new server" >&2
# A sibling test may have started the new server already: then -p refuses, and the wait finds it.
"${WINESERVER:-wineserver}" -p >/dev/null 2>&1 || true
wineserver_wait_up >&2 || exit "$rc"
run_test "$@"
exit "$rc"
