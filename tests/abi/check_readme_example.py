#!/usr/bin/env python3
"""The README shows examples/hello_pipe.c verbatim, so the example people copy is the one the
test suite builds and runs. usage: check_readme_example.py README.md examples/hello_pipe.c"""
import re
import sys

readme, example = (open(p, encoding="utf-8").read() for p in sys.argv[1:3])
blocks = re.findall(r"```c\n(.*?)```", readme, re.S)
if example in blocks:
    print("README shows examples/hello_pipe.c verbatim")
    sys.exit(0)
print("FAIL: README.md has no ```c block equal to examples/hello_pipe.c")
sys.exit(1)
