#!/usr/bin/env python3
"""scripts/wine-run.sh, the Wine tests' wrapper, against a stand-in Wine: a `wine` that passes,
fails, or kills the wineserver and then fails or exits 0, and a `wineserver -p` that starts a process in the server
directory of the prefix (where the wrapper looks for the real one). Checks when the wrapper runs a
test once more and when it lets the failure stand.
Usage: test_wine_run.py PATH/TO/wine-run.sh"""
import os
import signal
import subprocess
import sys
import tempfile
import time

FAKE_WINESERVER = r"""#!/bin/bash
# -p: start a server (a process whose working directory is the prefix's server directory).
[ "$1" = -p ] || exit 2
if [ -s "$FAKE_DIR/server.pid" ] && kill -0 "$(cat "$FAKE_DIR/server.pid")" 2>/dev/null; then
    exit 1  # one runs already, as the real one refuses
fi
mkdir -p "$FAKE_SERVER_DIR"
cd "$FAKE_SERVER_DIR" && { setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "$FAKE_DIR/server.pid"; }
"""

FAKE_WINE = r"""#!/bin/bash
server_up() { [ -s "$FAKE_DIR/server.pid" ] && kill -0 "$(cat "$FAKE_DIR/server.pid")" 2>/dev/null; }
# The wrapper's "is the server up" probe runs only through a live server.
if [ "$1" = cmd ]; then server_up; exit; fi
{ printf '[%s]' "$@"; echo; } >> "$FAKE_DIR/runs"
n=$(wc -l < "$FAKE_DIR/runs")
kill_server() { kill "$(cat "$FAKE_DIR/server.pid")"; while server_up; do sleep 0.05; done; }
case "$FAKE_MODE" in
    pass) exit 0 ;;
    fail) exit 3 ;;
    die-once) [ "$n" -gt 1 ] && exit 0; kill_server; exit 3 ;;
    die-always) kill_server; exit 3 ;;
    die-silently) [ "$n" -gt 1 ] && exit 3; kill_server; exit 0 ;;
    summary) echo '[doctest] Status: SUCCESS!'; exit 0 ;;
    die-silently-then-summary) [ "$n" -gt 1 ] && { echo '[doctest] Status: SUCCESS!'; exit 0; }; kill_server; exit 0 ;;
esac
exit 99
"""

FAILS = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        FAILS.append(what)


def main():
    wrapper = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="npipe-wine-run-") as tmp:
        prefix = os.path.join(tmp, "prefix")
        os.mkdir(prefix)
        st = os.stat(prefix)
        server_dir = os.path.join(tmp, "server-root", "server-%x-%x" % (st.st_dev, st.st_ino))
        for name, text in (("wine", FAKE_WINE), ("wineserver", FAKE_WINESERVER)):
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
            os.chmod(os.path.join(tmp, name), 0o755)
        base_env = dict(os.environ, WINEPREFIX=prefix, WINE=os.path.join(tmp, "wine"),
                        WINESERVER=os.path.join(tmp, "wineserver"), FAKE_DIR=tmp, FAKE_SERVER_DIR=server_dir)

        def server_pid():
            try:
                pid = int(open(os.path.join(tmp, "server.pid")).read())
                os.kill(pid, 0)
                return pid
            except (OSError, ValueError):
                return None

        # A doctest program, as the wrapper tells one: its file has doctest's "[doctest] " lines.
        doctest_exe = os.path.join(tmp, "doctest_tests.exe")
        with open(doctest_exe, "wb") as f:
            f.write(b"MZ\0\0[doctest] Status: \0")

        def run(mode, with_server=True, program="test.exe"):
            if os.path.exists(os.path.join(tmp, "runs")):
                os.remove(os.path.join(tmp, "runs"))
            if with_server and server_pid() is None:
                subprocess.run([base_env["WINESERVER"], "-p"], env=base_env, check=True, timeout=10)
            pid = server_pid()
            if not with_server and pid is not None:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while server_pid() is not None and time.monotonic() < deadline:
                    time.sleep(0.05)
            before = server_pid()
            p = subprocess.run([wrapper, program, "--test-suite=two words", ""], env=dict(base_env, FAKE_MODE=mode),
                               capture_output=True, text=True, timeout=120)
            try:
                runs = open(os.path.join(tmp, "runs")).read().splitlines()
            except FileNotFoundError:
                runs = []
            return p, runs, before

        try:
            p, runs, _ = run("pass")
            check(p.returncode == 0 and len(runs) == 1, "a passing test runs once (rc %d, %d runs)" % (p.returncode, len(runs)))
            check(runs == ["[test.exe][--test-suite=two words][]"], "its arguments reach wine as given: %r" % runs)
            check("again" not in p.stderr, "a pass says nothing: %r" % p.stderr)

            p, runs, _ = run("fail")
            check(p.returncode == 3 and len(runs) == 1,
                  "a test failing with its server alive fails, unrepeated (rc %d, %d runs)" % (p.returncode, len(runs)))
            check("again" not in p.stderr, "and says nothing of a rerun: %r" % p.stderr)

            p, runs, before = run("die-once")
            after = server_pid()
            check(p.returncode == 0 and len(runs) == 2,
                  "a test failing as its server died runs once more and passes (rc %d, %d runs)" % (p.returncode, len(runs)))
            check("wine-run: again: the wineserver (pid %d) died during the test, which ended with exit 3" % before
                  in p.stderr,
                  "and says why on stderr: %r" % p.stderr)
            check(after is not None and after != before, "on a server started afresh (%s, was %s)" % (after, before))

            p, runs, _ = run("die-always")
            check(p.returncode == 3 and len(runs) == 2,
                  "a test failing again on the new server fails (rc %d, %d runs)" % (p.returncode, len(runs)))

            # A Wine program cut off by its server's death can exit 0 having done nothing: that
            # pass does not count either; the rerun's failure does.
            p, runs, _ = run("die-silently")
            check(p.returncode == 3 and len(runs) == 2,
                  "a test that exits 0 as its server died runs once more, whose result counts (rc %d, %d runs)"
                  % (p.returncode, len(runs)))

            # A doctest program that exits 0 without doctest's summary was cut off: a failure, even
            # with its server alive (`wineserver -k` ends the clients before the server).
            p, runs, _ = run("summary", program=doctest_exe)
            check(p.returncode == 0 and len(runs) == 1 and "[doctest] Status: SUCCESS!" in p.stdout,
                  "a doctest run that ends with its summary passes, the summary on stdout (rc %d, %d runs, %r)"
                  % (p.returncode, len(runs), p.stdout))
            p, runs, _ = run("pass", program=doctest_exe)
            check(p.returncode == 1 and len(runs) == 1,
                  "a doctest run that exits 0 without its summary fails, unrepeated (rc %d, %d runs)"
                  % (p.returncode, len(runs)))
            check("wine-run: the test exited 0 without doctest's summary" in p.stderr, "and says why: %r" % p.stderr)
            p, runs, _ = run("pass")
            check(p.returncode == 0, "a program that is not doctest's may exit 0 silently (rc %d)" % p.returncode)
            p, runs, _ = run("die-silently-then-summary", program=doctest_exe)
            check(p.returncode == 0 and len(runs) == 2,
                  "a doctest run cut off with its server runs once more, and its summary passes it (rc %d, %d runs)"
                  % (p.returncode, len(runs)))

            p, runs, _ = run("fail", with_server=False)
            check(p.returncode == 3 and len(runs) == 1,
                  "with no server before the test, a failure stands (rc %d, %d runs)" % (p.returncode, len(runs)))
        finally:
            pid = server_pid()
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
    print("%d failed" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
