#!/usr/bin/env python3
"""The README shows each example file verbatim (examples/hello_pipe.c, the Python and .NET
examples), so the code people copy is the code the test suites build and run.
usage: check_readme_example.py README.md FILE..."""
import re
import sys

readme = open(sys.argv[1], encoding="utf-8").read()
blocks = re.findall(r"```\w*\n(.*?)```", readme, re.S)
failed = 0
for path in sys.argv[2:]:
    example = open(path, encoding="utf-8").read()
    if example in blocks:
        print(f"README shows {path} verbatim")
    else:
        print(f"FAIL: README.md has no block equal to {path}")
        failed += 1
# A block left as a template ("{name}") is a README that was never filled in.
for b in blocks:
    if re.fullmatch(r"\s*\{\w+\}\s*", b):
        print(f"FAIL: README.md has a placeholder block {b.strip()!r}")
        failed += 1
sys.exit(1 if failed else 0)
