#!/usr/bin/env python3
"""Adds up the results of several Meson build directories' test runs and prints one closing
line, "npipe: N passed, N failed, N skipped". Suites run by doctest, Python's unittest, xunit
(dotnet test) and the tool's own runner (tools/tests/test_tool.py) count their test cases; any
other Meson test counts as one, and a Meson skip (exit 77: e.g. a check whose input is not in this
checkout) as one skipped. A suite that crashed or timed out counts as failed even if its cases
passed."""
import json
import os
import re
import sys

DOCTEST = re.compile(r"\[doctest\] test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped")
XUNIT = re.compile(r"Failed:\s*(\d+),\s*Passed:\s*(\d+),\s*Skipped:\s*(\d+)")
UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in", re.M)
UNITTEST_END = re.compile(r"^(OK|FAILED)(?: \((.*)\))?\s*$", re.M)
# tools/tests/test_tool.py: "ok    test_name  0.1s  (skipped: why)" / "FAIL  test_name ...".
TOOL_CASE = re.compile(r"^(ok|FAIL)\s+test_\w+\s[^\n]*?(\(skipped[^\n]*)?$", re.M)


def case_counts(out):
    """(passed, failed, skipped) of the test cases a runner reported in `out`, or None."""
    m = DOCTEST.search(out)
    if m:
        # doctest counts the cases that --test-suite filtered out as "skipped": not real skips.
        _, p, f, _ = map(int, m.groups())
        return p, f, 0
    runs = XUNIT.findall(out)
    if runs:
        return tuple(sum(int(r[i]) for r in runs) for i in (1, 0, 2))
    cases = TOOL_CASE.findall(out)
    if cases:
        s = sum(1 for r, skip in cases if r == "ok" and skip)
        f = sum(1 for r, _ in cases if r == "FAIL")
        return len(cases) - s - f, f, s
    ran, end = UNITTEST_RAN.search(out), UNITTEST_END.findall(out)
    if ran and end:
        detail = dict(kv.split("=") for kv in end[-1][1].split(", ") if "=" in kv)
        f = int(detail.get("failures", 0)) + int(detail.get("errors", 0))
        s = int(detail.get("skipped", 0))
        return int(ran.group(1)) - f - s, f, s
    return None


def summarize(build):
    log = os.path.join(build, "meson-logs", "testlog.json")
    passed = failed = skipped = 0
    if not os.path.exists(log):
        print(f"{os.path.basename(build)}: no test log (build failed?)")
        return 0, 1, 0
    for line in open(log, encoding="utf-8", errors="replace"):
        t = json.loads(line)
        ok = t.get("result") in ("OK", "EXPECTEDFAIL")
        counts = case_counts(t.get("stdout") or "")
        if counts:
            p, f, s = counts
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


def main():
    total = [0, 0, 0]
    for build in sys.argv[1:]:
        for i, v in enumerate(summarize(build)):
            total[i] += v
    print(f"npipe: {total[0]} passed, {total[1]} failed, {total[2]} skipped")
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main())
