#!/usr/bin/env python3
"""C++ built for Windows (lib/, capi/, tests/, bench/, examples/) does not wait in std::atomic::wait.
With the mingw-w64 toolchain it has no futex underneath, and its fallback can miss a wake-up (GCC
PR 106183): every waiter then sleeps for good. So these are refused:
- std::barrier, std::latch and the std semaphores (they wait in std::atomic::wait): it hung the
  stress suite under Wine; test::Rendezvous (tests/api/support.hpp) is the bounded barrier to use;
- wait / notify_one / notify_all called on a std::atomic or std::atomic_flag declared in the same
  file or in its header of the same name, and the free std::atomic_wait / atomic_notify functions,
  except in lib/core/fast_mutex.hpp, whose use of them is Linux-only.

Usage: check_portable_sync.py ROOT      check the tree under ROOT
       check_portable_sync.py --self-test  show that each rule finds what it must, and only that"""
import pathlib
import re
import sys

ALLOWED_ATOMIC_WAIT = {"lib/core/fast_mutex.hpp"}
DIRS = ("lib", "capi", "tests", "bench", "examples")
EXTS = ("*.cpp", "*.hpp", "*.c", "*.h")

forbidden_types = re.compile(
    r"#\s*include\s*<(barrier|latch|semaphore)>|std::(barrier|latch|counting_semaphore|binary_semaphore)\b")
free_atomic_wait = re.compile(r"\b(std::)?atomic(_flag)?_(wait|notify_one|notify_all)(_explicit)?\s*\(")
# `std::atomic<T> name`, `std::atomic_flag name`, `std::atomic_int name`, also in a list of members.
atomic_declaration = re.compile(r"\bstd::atomic(?:_\w+)?\s*(?:<[^;(){}]*>)?\s+(\w+)")


def code_lines(text):
    """Each line without its // comment: what comments say is not a use."""
    return [line.split("//")[0] for line in text.splitlines()]


def atomic_names(lines):
    return {m.group(1) for line in lines for m in atomic_declaration.finditer(line)}


def problems(relative, lines, sibling_lines):
    """(line number, why) for each refused use in one file."""
    found = []
    names = atomic_names(lines) | atomic_names(sibling_lines)
    member_wait = (re.compile(r"\b(" + "|".join(sorted(map(re.escape, names))) + r")\s*(\.|->)\s*(wait|notify_one|notify_all)\s*\(")
                   if names else None)
    for number, line in enumerate(lines, 1):
        if forbidden_types.search(line):
            found.append((number, "std::barrier, std::latch or a std semaphore"))
        elif relative not in ALLOWED_ATOMIC_WAIT and (free_atomic_wait.search(line)
                                                      or (member_wait and member_wait.search(line))):
            found.append((number, "std::atomic wait/notify"))
    return found


def sibling_of(path):
    other = {".cpp": ".hpp", ".hpp": ".cpp", ".c": ".h", ".h": ".c"}.get(path.suffix)
    return path.with_suffix(other) if other else None


def check_tree(root):
    files = sorted(p for d in DIRS for ext in EXTS for p in (root / d).rglob(ext))
    bad = []
    for path in files:
        sibling = sibling_of(path)
        sibling_lines = code_lines(sibling.read_text(errors="replace")) if sibling and sibling.exists() else []
        text = path.read_text(errors="replace")
        lines, raw = code_lines(text), text.splitlines()
        relative = path.relative_to(root).as_posix()
        for number, why in problems(relative, lines, sibling_lines):
            bad.append(f"  {relative}:{number}: {why}: {raw[number - 1].strip()}")
    print(f"{len(files)} files checked, {len(bad)} uses that can hang under mingw (std::atomic::wait underneath)")
    if bad:
        print("\n".join(bad))
    return 1 if bad else 0


# (file, its text, its header's text, how many lines with a refused use)
SELF_TEST_CASES = [
    ("tests/a.cpp", "#include <barrier>\nstd::barrier sync(2);\n", "", 2),
    ("tests/a.cpp", "std::counting_semaphore<4> s{0};\n// std::latch in a comment is fine\n", "", 1),
    ("lib/a.cpp", "std::atomic<uint32_t> state_{0};\nvoid f() { state_.wait(1);\n state_.notify_one(); }\n", "", 2),
    ("lib/a.cpp", "void f() { flag_.notify_all(); }\n", "std::atomic_flag flag_;\n", 1),
    ("lib/a.cpp", "void f() { std::atomic_wait(&x, 0); }\n", "", 1),
    ("lib/core/fast_mutex.hpp", "std::atomic<int> state_;\nvoid f() { state_.wait(2); }\n", "", 0),
    # A condition variable's wait, and a poll's, are not atomics.
    ("lib/a.cpp", "std::condition_variable cv_;\nstd::atomic<bool> done_{};\nvoid f() { cv_.wait(lock); cv_.notify_all(); poll.wait(20); }\n", "", 0),
]


def self_test():
    failures = 0
    for relative, text, header, expected in SELF_TEST_CASES:
        got = len(problems(relative, code_lines(text), code_lines(header)))
        if got != expected:
            failures += 1
            print(f"self-test: {relative} {text!r}: {got} refused uses, expected {expected}")
    print(f"self-test: {len(SELF_TEST_CASES)} cases, {failures} wrong")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--self-test":
        sys.exit(self_test())
    sys.exit(check_tree(pathlib.Path(sys.argv[1])))
