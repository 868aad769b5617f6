#!/usr/bin/env python3
"""The C++ of lib/, capi/ and tests/core is kept in the style of .clang-format: this fails (and
names the files) when `clang-format -i` would change any of them."""
import pathlib
import subprocess
import sys

root = pathlib.Path(sys.argv[2])
files = sorted(str(p) for d in ("lib", "capi", "tests/core") for ext in ("*.cpp", "*.hpp")
               for p in (root / d).rglob(ext))
proc = subprocess.run([sys.argv[1], "--dry-run", "--Werror", *files], capture_output=True, text=True)
bad = sorted({line.split(":")[0] for line in proc.stderr.splitlines() if ": error:" in line})
print(f"{len(files)} files checked, {len(bad)} not formatted")
for f in bad:
    print("  clang-format -i", f)
sys.exit(1 if proc.returncode != 0 else 0)
