#!/usr/bin/env python3
"""Runs command blocks of README.md exactly as written, the way a new user would paste them, and
checks that the output ends with what the README shows.

A tested block is marked in the README with an HTML comment (invisible when rendered):

    <!-- readme-test: NAME -->
    ```sh
    commands...
    ```
    ```text
    the last lines those commands print
    ```

The commands run with bash (set -euo pipefail) in a scratch copy of the checkout: every top-level
entry of the source tree is a symlink into it, except build/, which holds only the build
directories given with --build (e.g. native=/path/to/build/native), so commands that create files
(a program, build/release, a package feed) leave the real tree alone. HOME and TMPDIR point into
the scratch directory, so an install to "$HOME/.local" or a `mktemp -d` is thrown away with it.
Output goes through a file, never a pipe (a first Wine program starts wineserver, which would
keep a pipe open).

usage: run_readme_block.py --readme README.md --source-root DIR --build NAME=DIR ... [--keep-home]
                           [--timeout S] NAME...
exit 0 all blocks passed, 1 a block failed or is missing, 77 (skip) a --build directory is absent
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

# The marker, the commands' block, any prose that is not a block, then the output's block.
MARKER = re.compile(r"<!-- readme-test: (\S+) -->\s*```[\w-]*\n(.*?)```(?:(?!```).)*?```[\w-]*\n(.*?)```", re.S)


def blocks(readme):
    """{name: (commands, expected output)} of every marked block."""
    return {m.group(1): (m.group(2), m.group(3)) for m in MARKER.finditer(readme)}


def scratch_tree(root, source, builds):
    for entry in os.listdir(source):
        if entry in ("build", ".git"):
            continue
        os.symlink(os.path.join(source, entry), os.path.join(root, entry))
    os.makedirs(os.path.join(root, "build"))
    for name, path in builds.items():
        os.symlink(path, os.path.join(root, "build", name))


def lines(text):
    return [l.rstrip() for l in text.replace("\r", "").rstrip("\n").split("\n")]


def run_block(name, commands, expected, root, env, timeout):
    print(f"== readme block '{name}':\n{commands}", flush=True)
    log_path = os.path.join(root, f"readme-{name}.log")
    with open(log_path, "w+b") as log:
        try:
            rc = subprocess.run(["bash", "-c", "set -euo pipefail\n" + commands], cwd=root, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout after %ss" % timeout
        log.seek(0)
        out = log.read().decode("utf-8", "replace")
    print(out, end="" if out.endswith("\n") else "\n", flush=True)
    want, got = lines(expected), lines(out)
    if rc != 0:
        print(f"FAIL: block '{name}' exited with {rc}")
        return False
    if got[-len(want):] != want:
        print(f"FAIL: block '{name}' output does not end with the README's:\n" + "\n".join(want))
        return False
    print(f"ok: block '{name}' printed what the README shows")
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--readme", required=True)
    ap.add_argument("--source-root", required=True)
    ap.add_argument("--build", action="append", default=[], help="NAME=DIR: DIR appears as build/NAME")
    ap.add_argument("--keep-home", action="store_true", help="keep HOME (e.g. for the NuGet cache)")
    ap.add_argument("--timeout", type=int, default=540)
    ap.add_argument("names", nargs="+")
    args = ap.parse_args()
    builds = dict(b.split("=", 1) for b in args.build)
    for name, path in builds.items():
        if not os.path.isdir(path):
            print(f"SKIP: build/{name} ({path}) does not exist: the README's commands need it")
            return 77
    found = blocks(open(args.readme, encoding="utf-8").read())
    ok = True
    root = tempfile.mkdtemp(prefix="npipe-readme-")
    try:
        scratch_tree(root, os.path.realpath(args.source_root), {k: os.path.realpath(v) for k, v in builds.items()})
        env = dict(os.environ)
        env["TMPDIR"] = os.path.join(root, "tmp")
        os.makedirs(env["TMPDIR"])
        if not args.keep_home:
            env["HOME"] = os.path.join(root, "home")
            os.makedirs(env["HOME"])
        for name in args.names:
            if name not in found:
                print(f"FAIL: README has no block marked <!-- readme-test: {name} -->")
                ok = False
                continue
            ok = run_block(name, *found[name], root, env, args.timeout) and ok
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
