#!/usr/bin/env python3
"""C++ built for Windows (lib/, capi/, tests/, bench/, examples/) does not use std::barrier,
std::latch or the std semaphores. With the mingw-w64 toolchain they wait in std::atomic::wait,
whose fallback (no futex underneath) can miss a wake-up (GCC PR 106183): every waiter then sleeps
for good. It hung the stress suite under Wine; test::Rendezvous (tests/api/support.hpp) is the
bounded barrier to use. std::atomic::wait itself is allowed only in lib/core/fast_mutex.hpp,
whose use of it is Linux-only."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
forbidden = re.compile(r"#\s*include\s*<(barrier|latch|semaphore)>|std::(barrier|latch|counting_semaphore|binary_semaphore)\b")
files = sorted(p for d in ("lib", "capi", "tests", "bench", "examples") for ext in ("*.cpp", "*.hpp", "*.c", "*.h")
               for p in (root / d).rglob(ext))
bad = []
for path in files:
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if forbidden.search(line.split("//")[0]):  # what comments say is not a use
            bad.append(f"  {path.relative_to(root)}:{number}: {line.strip()}")
print(f"{len(files)} files checked, {len(bad)} uses of std::barrier, std::latch or a std semaphore")
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
