#!/usr/bin/env python3
"""Adds up the results of several Meson build directories' test runs and prints one closing
line, "npipe: N passed, N failed". doctest suites count their test cases; any other Meson test
counts as one. A suite that crashed or timed out counts as failed even if its cases passed."""
import json
import os
import re
import sys

DOCTEST = re.compile(r"\[doctest\] test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped")


def summarize(build):
    log = os.path.join(build, "meson-logs", "testlog.json")
    passed = failed = skipped = 0
    if not os.path.exists(log):
        print(f"{os.path.basename(build)}: no test log (build failed?)")
        return 0, 1, 0
    for line in open(log, encoding="utf-8", errors="replace"):
        t = json.loads(line)
        ok = t.get("result") in ("OK", "EXPECTEDFAIL")
        m = DOCTEST.search(t.get("stdout") or "")
        if m:
            _, p, f, s = map(int, m.groups())
            passed, failed, skipped = passed + p, failed + f, skipped + s
            if not ok and f == 0:
                failed += 1  # crashed, hung or leaked after its cases passed
        elif t.get("result") == "SKIP":
            skipped += 1
        elif ok:
            passed += 1
        else:
            failed += 1
    print(f"{os.path.basename(build)}: {passed} passed, {failed} failed, {skipped} skipped")
    return passed, failed, skipped


total = [0, 0, 0]
for build in sys.argv[1:]:
    for i, v in enumerate(summarize(build)):
        total[i] += v
print(f"npipe: {total[0]} passed, {total[1]} failed, {total[2]} skipped")
sys.exit(1 if total[1] else 0)
