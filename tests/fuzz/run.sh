#!/bin/sh
# Runs the libFuzzer target for a bounded time. Usage: run.sh <fuzzer> <seed dir> <work dir>
# Seconds: $NPIPE_FUZZ_SECONDS (default 60). New inputs the fuzzer finds go to <work dir>/corpus
# (the committed seeds stay as they are); a failing input is written to <work dir>/ and named in
# the output, and running the fuzzer with that file as its only argument replays it.
set -eu
fuzzer=$1
seeds=$2
work=$3
seconds=${NPIPE_FUZZ_SECONDS:-60}
mkdir -p "$work/corpus"
# Socket files of bare names go to $TMPDIR: a private directory, short enough for any checkout
# path (socket paths are limited to 107 bytes), removed afterwards.
tmp=$(mktemp -d /tmp/npipe-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
status=0
TMPDIR=$tmp "$fuzzer" "$work/corpus" "$seeds" \
    -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$work/" || status=$?
if [ "$status" -ne 0 ]; then
    echo "fuzz: FAILED (exit $status); replay the input named above with: $fuzzer <file>"
    exit 1
fi
echo "fuzz: ${seconds}s without a broken promise, crash, leak or lost descriptor"
