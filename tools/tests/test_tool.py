#!/usr/bin/env python3
"""Tests of the `npipe` command-line tool, driving the binary as a user would.

Standard library only (no pytest). Every subprocess has a timeout, every pipe name includes this
process's pid. Under a cross build the binary runs through a wrapper (e.g. `--wrapper wine`);
Wine processes of one prefix share pipe names, so listen/connect across two processes works.

usage: test_tool.py --npipe PATH [--wrapper CMD] [-k SUBSTRING] [-v]
"""
import argparse
import json
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import traceback

# The wineserver-pid rule is scripts/wineserver_pid.py's, which scripts/wine-run.sh runs too.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from wineserver_pid import wineserver_pid as prefix_server_pid  # noqa: E402

ARGS = None
KEEPER = [None]  # under a wrapper: the idle tool process that keeps the wineserver up (main)
UNDER_WINE = False  # the wrapper is Wine: tests share one wineserver (run_tests)
WRAPPER = []
TIMEOUT = 30
TMP = None
COUNTER = [0]

ERROR_LINE = re.compile(r"^npipe: .+: .+ \(NPIPE_E[A-Z]+\)$")


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def name(tag):
    COUNTER[0] += 1
    return "npipe-tooltest-%d-%d-%s" % (os.getpid(), COUNTER[0], tag)


def cmd(*args):
    return WRAPPER + [ARGS.npipe] + [str(a) for a in args]


def run(*args, stdin=None, input_bytes=None, timeout=None):
    """Runs the tool to completion; returns (rc, stdout bytes, stderr text).

    Output goes through files, never pipes: under Wine the first program of a session starts
    wineserver, which inherits its stdout/stderr and keeps them open, so reading a pipe to EOF
    would wait for wineserver to exit."""
    if input_bytes is not None:
        COUNTER[0] += 1
        path = os.path.join(TMP, "in-%d" % COUNTER[0])
        with open(path, "wb") as f:
            f.write(input_bytes)
        with open(path, "rb") as f:
            return finish(start(*args, stdin=f), timeout)
    return finish(start(*args, stdin=stdin if stdin is not None else subprocess.DEVNULL), timeout)


def start(*args, stdin=subprocess.DEVNULL):
    """Starts the tool in the background. Its stdout goes to a file, not a pipe this script would
    only read at the end: a full pipe would stall the tool and with it the whole relay (and see
    run() for Wine)."""
    if ARGS.verbose:
        print("  $ " + " ".join(shlex.quote(a) for a in cmd(*args)) + " &", flush=True)
    COUNTER[0] += 1
    out = open(os.path.join(TMP, "out-%d" % COUNTER[0]), "w+b")
    err = open(os.path.join(TMP, "err-%d" % COUNTER[0]), "w+b")
    proc = subprocess.Popen(cmd(*args), stdin=stdin, stdout=out, stderr=err)
    proc.out_file, proc.err_file = out, err
    return proc


def finish(proc, timeout=None):
    """Waits for a background tool; returns (rc, stdout, stderr) or kills it and fails."""
    try:
        proc.wait(timeout=timeout or TIMEOUT)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise Failed("%s did not finish within %ss" % (" ".join(proc.args), timeout or TIMEOUT))
    return proc.returncode, read_back(proc.out_file), read_back(proc.err_file).decode("utf-8", "replace")


def read_back(f):
    f.flush()
    f.seek(0)
    data = f.read()
    f.close()
    return data


def stop(proc):
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=10)
    except Exception:
        pass
    for f in (proc.out_file, proc.err_file):
        if not f.closed:
            f.close()


def random_file(size, seed):
    rnd = random.Random(seed)
    data = rnd.randbytes(size)
    COUNTER[0] += 1
    path = os.path.join(TMP, "data-%d-%d.bin" % (COUNTER[0], seed))
    with open(path, "wb") as f:
        f.write(data)
    return path, data


def wait_for_server(pipe):
    """Blocks until an echo server answers on `pipe` (a connect with empty stdin)."""
    rc, out, err = run("connect", pipe, "--timeout", 10000, "--exit-on=echoed", input_bytes=b"")
    check(rc == 0, "echo server %s did not come up: rc %d, %s" % (pipe, rc, err))


def expect_error(rc, err, code, what):
    check(rc == code, "%s: exit code %d, expected %d; stderr: %r" % (what, rc, code, err))
    lines = [l for l in err.splitlines() if l.strip()]
    check(len(lines) == 1, "%s: expected one stderr line, got %r" % (what, err))
    check(ERROR_LINE.match(lines[0]), "%s: stderr line %r is not 'npipe: <what>: <detail> (<code>)'" % (what, lines[0]))
    return lines[0]


def wait_until(cond, what, timeout=None):
    """Polls `cond` (a file growing, a process exiting: nothing to block on) within a bound."""
    deadline = time.monotonic() + (timeout or TIMEOUT)
    while not cond():
        if time.monotonic() > deadline:
            raise Failed("timed out after %ss waiting for %s" % (timeout or TIMEOUT, what))
        time.sleep(0.02)


def output_size(proc):
    return os.path.getsize(proc.out_file.name)


class Feeder:
    """Writes zeros to a process's stdin until stopped or until the process stops reading, so
    the process's stdin never ends: a transfer that is still going on."""

    def __init__(self, proc):
        self.proc, self.stop_flag = proc, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        chunk = bytes(64 * 1024)
        try:
            while not self.stop_flag.is_set():
                self.proc.stdin.write(chunk)
                self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the process exited: its stdin is gone

    def stop(self):
        self.stop_flag.set()
        try:
            self.proc.stdin.close()  # unblocks a pending write with EPIPE once the reader is gone
        except (BrokenPipeError, OSError):
            pass
        self.thread.join(timeout=TIMEOUT)


def expect_broken(rc, err, what):
    check(rc == 1, "%s: exit code %d, expected 1 (broken transfer); stderr %r" % (what, rc, err))
    check(re.search(r"^npipe: transfer broken: .* closed the pipe before all of standard input was sent "
                    r"\((\d+) bytes sent, \d+ received\)\r?$", err, re.M),
          "%s: no 'transfer broken ... (N bytes sent, N received)' line in %r" % (what, err))
    sent = int(re.search(r"\((\d+) bytes sent", err).group(1))
    check(sent > 0, "%s: says %d bytes sent, but the peer had received data" % (what, sent))


# --- tests ---------------------------------------------------------------------------------------

def test_help_and_version():
    rc, out, _ = run("--help")
    check(rc == 0 and b"listen" in out and b"exit codes" in out, "npipe --help: rc %d, %r" % (rc, out[:200]))
    for sub in ("listen", "connect", "demo", "bench"):
        rc, out, _ = run(sub, "--help")
        check(rc == 0, "npipe %s --help: rc %d" % (sub, rc))
        check(b"usage: npipe " + sub.encode() in out and b"exit codes" in out, "npipe %s --help text: %r" % (sub, out[:200]))
    for arg in ("version", "--version"):
        rc, out, _ = run(arg)
        check(rc == 0 and re.match(rb"^npipe tool \d+\.\d+\.\d+, library \d+\.\d+\.\d+ \((linux|windows)\)\r?\n$", out),
              "npipe %s: rc %d, %r" % (arg, rc, out))


def test_usage_errors():
    for args in (["listen", "x", "--no-such-option"], ["connect"], ["frobnicate"], ["connect", "x", "--timeout", "soon"],
                 ["bench", "--bytes", "lots"], ["bench", "--threads", "0"], ["listen", "x", "--max-instances", "999"], []):
        rc, _, err = run(*args)
        check(rc == 2, "npipe %s: exit code %d, expected 2 (usage); stderr %r" % (" ".join(args), rc, err))
        check(err.strip(), "npipe %s: no usage message" % " ".join(args))


def test_bad_name():
    for bad in ("bad/name", "x" * 1000):
        rc, _, err = run("connect", bad, "--timeout", 0)
        expect_error(rc, err, 3, "connect to bad name %r" % bad[:20])
        rc, _, err = run("listen", bad, "--once")
        expect_error(rc, err, 3, "listen on bad name %r" % bad[:20])


def test_missing_server():
    rc, _, err = run("connect", name("missing"), "--timeout", 0)
    line = expect_error(rc, err, 4, "connect to a missing server")
    check("NPIPE_ENOENT" in line, "expected NPIPE_ENOENT in %r" % line)
    # A bounded wait for a server that never comes: ETIMEDOUT, busy/timeout code.
    t0 = time.monotonic()
    rc, _, err = run("connect", name("missing"), "--timeout", 300)
    expect_error(rc, err, 5, "connect --timeout 300 to a missing server")
    check(time.monotonic() - t0 < 15, "connect --timeout 300 took too long")


def test_connect_waits_for_a_late_server():
    """connect --timeout opens without blocking (the attempts run on its poll): started before the
    server exists, it connects once `listen` creates the pipe, and the copy is whole. The client
    starts first; nothing marks the moment its first attempt failed, so that order is likely, not
    forced (either way the copy must succeed)."""
    pipe = name("late")
    path, data = random_file(256 * 1024, 7)
    with open(path, "rb") as f:
        client = start("connect", pipe, "--timeout", 20000, stdin=f)
    try:
        rc, out, err = run("listen", pipe, "--once")
        check(rc == 0, "listen --once: rc %d, %s" % (rc, err))
        check(out == data, "listen got %d bytes, expected %d identical bytes" % (len(out), len(data)))
        rc, _, err = finish(client)
        check(rc == 0, "connect started before the server: rc %d, %s" % (rc, err))
    finally:
        stop(client)


def test_connect_waits_for_a_busy_instance():
    """A single instance held by one client: a second `connect --timeout` waits (Windows: an
    asynchronous wait for the instance; Linux: the kernel queues it) and is served once the first
    client leaves."""
    pipe = name("wait-busy")
    server = start("listen", pipe, "--max-instances", 1)
    holder = start("connect", pipe, "--timeout", 20000, stdin=subprocess.PIPE)
    second = None
    try:
        holder.stdin.write(b"first\n")
        holder.stdin.flush()
        wait_until(lambda: open(server.out_file.name, "rb").read() == b"first\n", "the first client's line")
        COUNTER[0] += 1
        path = os.path.join(TMP, "second-%d" % COUNTER[0])
        with open(path, "wb") as f:
            f.write(b"second\n")
        with open(path, "rb") as f:
            second = start("connect", pipe, "--timeout", 20000, "--exit-on=stdin", stdin=f)
        holder.stdin.close()  # the first client ends; the instance serves the next
        rc, _, err = finish(holder)
        check(rc == 0, "first client: rc %d, %s" % (rc, err))
        rc, _, err = finish(second)
        check(rc == 0, "second client: rc %d, %s" % (rc, err))
        wait_until(lambda: open(server.out_file.name, "rb").read() == b"first\nsecond\n",
                   "the second client's line")
    finally:
        for proc in (second, holder, server):
            if proc is not None:
                stop(proc)


def test_first_instance_taken():
    pipe = name("taken")
    server = start("listen", pipe, "--echo")
    try:
        wait_for_server(pipe)
        rc, _, err = run("listen", pipe, "--first-instance", "--once")
        line = expect_error(rc, err, 7, "listen --first-instance on a taken name")
        check("NPIPE_EEXIST" in line, "expected NPIPE_EEXIST in %r" % line)
    finally:
        stop(server)


def test_second_listener_disturbs_nobody():
    """Linux: a second process creating a name that a live server holds gets NPIPE_EEXIST, and the
    live server sees no phantom client (liveness is asked of the kernel, not probed by connecting):
    it still serves its one real client. On Windows a second process just adds an instance."""
    if WRAPPER:
        return
    for extra in ([], ["--current-user-only"]):  # the latter's socket was bound elsewhere, then linked
        second_listener_disturbs_nobody(extra)


def second_listener_disturbs_nobody(extra):
    pipe = name("dup")
    first = start("listen", pipe, "--once", "--verbose", *extra)
    try:
        wait_until(lambda: b"listening on" in open(first.err_file.name, "rb").read(), "the first listener")
        rc, _, err = run("listen", pipe, "--once")
        line = expect_error(rc, err, 7, "a second listener on a live name")
        check("NPIPE_EEXIST" in line, "expected NPIPE_EEXIST in %r" % line)
        check(first.poll() is None, "the first listener ended: it saw a phantom client")
        rc, _, err = run("connect", pipe, "--timeout", 5000, input_bytes=b"real client")
        check(rc == 0, "the real client: rc %d, %s" % (rc, err))
        rc, out, err = finish(first)
        check(rc == 0 and out == b"real client", "the first listener: rc %d, out %r, %s" % (rc, out, err))
    finally:
        stop(first)


def test_busy_single_instance():
    """--max-instances 1 with a client holding it: a second client sees 'busy' (Windows only: on
    Linux the kernel queues the connection, so the second open succeeds)."""
    if not WRAPPER and sys.platform != "win32":
        return "skipped on Linux (the kernel queues connections; EBUSY only when the backlog is full)"
    pipe = name("busy")
    server = start("listen", pipe, "--max-instances", 1, "--once")
    holder = start("connect", pipe, "--timeout", 10000, stdin=subprocess.PIPE)
    try:
        time.sleep(3 if WRAPPER else 0.5)
        if holder.poll() is not None:
            raise Failed("the first client ended early: %r" % (finish(holder),))
        rc, _, err = run("connect", pipe, "--timeout", 0)
        line = expect_error(rc, err, 5, "connect to a busy pipe")
        check("NPIPE_EBUSY" in line, "expected NPIPE_EBUSY in %r" % line)
    finally:
        stop(holder)
        stop(server)


def test_refused_by_current_user_only():
    """A client with --current-user-only refuses a server of another user: access-denied code.
    Needs another uid: runs on Linux as root with setpriv (skipped elsewhere)."""
    import shutil
    if WRAPPER or not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("setpriv"):
        return "skipped: needs Linux, root and setpriv to run a server as another user"
    path = "/tmp/%s" % name("other")
    server = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ARGS.npipe, "listen",
                               path, "--echo"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.02)
        if server.poll() is not None:
            return "skipped: the server could not run as uid 65534 (%r)" % server.stderr.read()[:200]
        rc, _, err = run("connect", path, "--current-user-only", "--timeout", 0, input_bytes=b"")
        line = expect_error(rc, err, 6, "connect --current-user-only to another user's server")
        check("NPIPE_EACCES" in line, "expected NPIPE_EACCES in %r" % line)
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=10)
        server.stderr.close()
        if os.path.exists(path):
            os.unlink(path)


def copy_to_server(tag, path, data, *connect_opts):
    """`listen --once > out` and `connect OPTS < file`: both exit 0, out is the file."""
    pipe = name(tag)
    server = start("listen", pipe, "--once")
    try:
        with open(path, "rb") as f:
            rc, _, err = run("connect", pipe, "--timeout", 10000, *connect_opts, stdin=f)
        check(rc == 0, "connect %s < file: rc %d, %s" % (" ".join(connect_opts), rc, err))
        rc, out, err = finish(server)
        check(rc == 0, "listen --once > out: rc %d, %s" % (rc, err))
        check(out == data, "listen got %d bytes, expected %d identical bytes" % (len(out), len(data)))
    finally:
        stop(server)


def copy_to_client(tag, path, data, *listen_opts):
    """`listen --once OPTS < file` and `connect > out` (stdin empty): both exit 0, out is the file."""
    pipe = name(tag)
    with open(path, "rb") as f:
        server = start("listen", pipe, "--once", *listen_opts, stdin=f)
    try:
        rc, out, err = run("connect", pipe, "--timeout", 10000, stdin=subprocess.DEVNULL)
        check(rc == 0, "connect > out: rc %d, %s" % (rc, err))
        check(out == data, "connect got %d bytes, expected %d identical bytes" % (len(out), len(data)))
        rc, _, err = finish(server)
        check(rc == 0, "listen --once %s < file: rc %d, %s" % (" ".join(listen_opts), rc, err))
    finally:
        stop(server)


def test_listen_verbose_names_each_client():
    """`listen -v` prints each client's pid and user (Linux: uid and gid; Windows: the SID, known once
    the client has sent something), and `connect -v` the server's."""
    path, data = random_file(100 * 1024, 9)
    pipe = name("verbose")
    server = start("listen", pipe, "--once", "-v")
    try:
        with open(path, "rb") as f:
            client = start("connect", pipe, "--timeout", 10000, "-v", stdin=f)
            rc, _, cerr = finish(client)
        check(rc == 0, "connect -v < file: rc %d, %s" % (rc, cerr))
        rc, out, err = finish(server)
        check(rc == 0 and out == data, "listen --once -v: rc %d, %d bytes of %d" % (rc, len(out), len(data)))
    finally:
        stop(server)
    if WRAPPER:  # Windows pids are Wine's own; the user is the SID of the one Wine user
        user = r"pid [1-9]\d*, user S-1-5-[0-9-]+, this user"
        client_user = server_user = user
    else:
        user = r"uid %d gid %d, this user" % (os.geteuid(), os.getegid())
        client_user = r"pid %d, %s" % (client.pid, user)
        server_user = r"pid %d, %s" % (server.pid, user)
    check(re.search(r"^npipe: client 1 (connected \(|is )%s\)?\r?$" % client_user, err, re.M),
          "listen -v names neither the client's pid nor its user: %r" % err)
    check(re.search(r"^npipe: connected to .* \(server %s\)\r?$" % server_user, cerr, re.M),
          "connect -v names neither the server's pid nor its user: %r" % cerr)


def test_relay_client_to_server():
    copy_to_server("c2s", *random_file(1 << 20, 1), "--exit-on=stdin")


def test_relay_server_to_client():
    copy_to_client("s2c", *random_file(1 << 20, 2), "--exit-on=stdin")


def test_file_copy_plain():
    """The copy a new user tries first, with no options: `listen --once > out` and
    `connect < file` (end of stdin ends the connection), then the other way round,
    `listen --once < file` and `connect > out`."""
    path, data = random_file(3 * (1 << 20) + 11, 5)
    copy_to_server("copy", path, data)
    copy_to_client("copyback", path, data)


def kill_receiver_mid_transfer(sender, receiver, feeder, what):
    """Waits until `receiver` has written 256 KiB of what `sender` relays from its never-ending
    stdin, SIGKILLs `receiver`, and checks that `sender` reports a broken transfer."""
    try:
        wait_until(lambda: output_size(receiver) >= 256 * 1024 or receiver.poll() is not None,
                   "the receiving side to get 256 KiB")
        if receiver.poll() is not None:
            raise Failed("the receiving side ended early: %r" % (finish(receiver),))
        receiver.kill()
        receiver.wait(timeout=TIMEOUT)
        rc, _, err = finish(sender)
        expect_broken(rc, err, what)
    finally:
        feeder.stop()
        stop(sender)
        stop(receiver)


def test_killed_server_breaks_connect():
    """A listener killed (SIGKILL) mid-transfer: the sending `connect` exits 1 and says how many
    bytes it sent, instead of reporting success."""
    pipe = name("killsrv")
    server = start("listen", pipe, "--once")
    client = start("connect", pipe, "--timeout", 10000, stdin=subprocess.PIPE)
    kill_receiver_mid_transfer(client, server, Feeder(client), "connect after its server was killed")


def test_killed_client_breaks_listen():
    """The other direction: `listen --once` sending its stdin to a `connect` that is killed
    mid-transfer exits 1 and says how many bytes it sent."""
    pipe = name("killcli")
    server = start("listen", pipe, "--once", stdin=subprocess.PIPE)
    feeder = Feeder(server)
    client = start("connect", pipe, "--timeout", 10000)
    kill_receiver_mid_transfer(server, client, feeder, "listen --once after its client was killed")


def test_progress():
    """--progress ends each transfer with a line of bytes each way, elapsed time and rate."""
    path, data = random_file(1 << 20, 6)
    pipe = name("progress")
    server = start("listen", pipe, "--once", "--progress")
    try:
        with open(path, "rb") as f:
            rc, _, err_c = run("connect", pipe, "--timeout", 10000, "--progress", stdin=f)
        check(rc == 0, "connect --progress: rc %d, %s" % (rc, err_c))
        rc, out, err_s = finish(server)
        check(rc == 0 and out == data, "listen --progress: rc %d, %d bytes, %s" % (rc, len(out), err_s))
        line = r"^npipe: %s sent, %s received in [\d.]+ (us|ms|s) \([\d.]+ (B|KiB|MiB|GiB)/s\)\r?$"
        check(re.search(line % (r"1\.00 MiB", "0 B"), err_c, re.M), "connect --progress printed %r" % err_c)
        check(re.search(line % ("0 B", r"1\.00 MiB"), err_s, re.M), "listen --progress printed %r" % err_s)
        rc, _, err = run("connect", name("absent"), "--progress", "--no-progress")
        check(rc == 4, "connect with --progress --no-progress: rc %d, %s" % (rc, err))
    finally:
        stop(server)


def test_listen_serves_clients_in_turn():
    """Without --once, listen serves one client after another on the same instance."""
    pipe = name("turns")
    server = start("listen", pipe)
    try:
        for word in (b"one\n", b"two\n", b"three\n"):
            rc, _, err = run("connect", pipe, "--timeout", 10000, "--exit-on=stdin", input_bytes=word)
            check(rc == 0, "connect %r: rc %d, %s" % (word, rc, err))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            proc_out = open(server.out_file.name, "rb").read()
            if proc_out == b"one\ntwo\nthree\n":
                break
            time.sleep(0.05)
        check(proc_out == b"one\ntwo\nthree\n", "listen wrote %r" % proc_out)
        check(server.poll() is None, "listen exited after its clients")
    finally:
        stop(server)


def test_message_both_directions():
    """Message mode: both sides send a file at once; the end-of-stream markers end the session."""
    path_a, data_a = random_file(300 * 1024, 3)
    path_b, data_b = random_file(200 * 1024 + 7, 4)
    pipe = name("msg")
    with open(path_a, "rb") as fa:
        server = start("listen", pipe, "--message", "--once", stdin=fa)
    try:
        with open(path_b, "rb") as fb:
            rc, out, err = run("connect", pipe, "--message", "--timeout", 10000, stdin=fb)
        check(rc == 0, "connect --message: rc %d, %s" % (rc, err))
        check(out == data_a, "client got %d bytes, expected the server's %d" % (len(out), len(data_a)))
        rc, out, err = finish(server)
        check(rc == 0, "listen --message --once: rc %d, %s" % (rc, err))
        check(out == data_b, "server got %d bytes, expected the client's %d" % (len(out), len(data_b)))
    finally:
        stop(server)


def test_echo_concurrent_clients():
    pipe = name("echo")
    server = start("listen", pipe, "--echo")
    try:
        wait_for_server(pipe)
        clients = []
        for i in range(4):
            path, data = random_file(256 * 1024 + i, 10 + i)
            with open(path, "rb") as f:
                clients.append((start("connect", pipe, "--timeout", 10000, "--exit-on=echoed", stdin=f), data))
        for i, (proc, data) in enumerate(clients):
            rc, out, err = finish(proc)
            check(rc == 0, "echo client %d: rc %d, %s" % (i, rc, err))
            check(out == data, "echo client %d got %d bytes back, expected %d identical" % (i, len(out), len(data)))
        check(server.poll() is None, "the echo server exited")
    finally:
        stop(server)


def test_echo_message_lines():
    pipe = name("echomsg")
    server = start("listen", pipe, "--echo", "--message", "--once")
    try:
        text = b"first line\nsecond\n\nlast without newline"
        rc, out, err = run("connect", pipe, "--message", "--lines", "--timeout", 10000, input_bytes=text)
        check(rc == 0, "connect --message --lines: rc %d, %s" % (rc, err))
        check(out == text, "echoed %r, expected %r" % (out, text))
        rc, _, err = finish(server)
        check(rc == 0, "listen --echo --message --once: rc %d, %s" % (rc, err))
    finally:
        stop(server)


def test_demo():
    rc, out, err = run("demo", timeout=TIMEOUT * 2)
    text = out.decode("utf-8", "replace")
    check(rc == 0, "demo: rc %d\n%s\n%s" % (rc, text, err))
    check(re.search(r"totals .*4 clients, 128 messages, .*checksums 4/4 OK, elapsed", text),
          "demo totals line missing:\n" + text)


def test_bench_json():
    rc, out, err = run("bench", "--json", "--bytes", "4MiB", "--round-trips", 200, "--clients", 4,
                       "--client-bytes", "256KiB", timeout=TIMEOUT * 3)
    check(rc == 0, "bench --json: rc %d, %s" % (rc, err))
    try:
        doc = json.loads(out)
    except ValueError as e:
        raise Failed("bench --json is not JSON (%s): %r" % (e, out[:500]))
    tests = {r["test"]: r for r in doc["results"]}
    check(set(tests) == {"throughput", "pingpong", "fanout"}, "bench tests: %r" % sorted(tests))
    for r in doc["results"]:
        for key in ("npipe", "raw", "ratio", "npipe_seconds", "raw_seconds"):
            check(isinstance(r[key], (int, float)) and r[key] > 0, "%s.%s = %r, expected > 0" % (r["test"], key, r[key]))
    check(doc["platform"] in ("linux", "windows"), "platform %r" % doc.get("platform"))


def test_bench_fanout_threads():
    """--threads spreads the fan-out over that many polls per side, even when it does not divide the clients."""
    rc, out, err = run("bench", "--json", "--only", "fanout", "--threads", 3, "--clients", 5,
                       "--client-bytes", "128KiB", timeout=TIMEOUT * 3)
    check(rc == 0, "bench --only fanout --threads 3: rc %d, %s" % (rc, err))
    doc = json.loads(out)
    check(doc["params"]["threads"] == 3, "params: %r" % doc["params"])
    (fan,) = doc["results"]
    check(fan["test"] == "fanout" and "5 clients" in fan["description"] and "3 polls" in fan["description"],
          "fanout row: %r" % fan)
    check(fan["npipe_seconds"] > 0 and fan["raw_seconds"] > 0, "fanout row: %r" % fan)


def test_bench_burst_json():
    rc, out, err = run("bench", "burst", "--json", "--clients", 16, timeout=TIMEOUT * 3)
    check(rc == 0, "bench burst --json: rc %d, %s" % (rc, err))
    try:
        doc = json.loads(out)
    except ValueError as e:
        raise Failed("bench burst --json is not JSON (%s): %r" % (e, out[:500]))
    check(doc["params"]["clients"] == 16, "params: %r" % doc["params"])
    results = {r["server"]: r for r in doc["results"]}
    check(set(results) == {"listener", "single-instance"}, "bench burst servers: %r" % sorted(results))
    for r in doc["results"]:
        for key in ("accepted", "opened", "busy", "failed"):
            check(isinstance(r[key], int) and 0 <= r[key] <= 16, "%s.%s = %r" % (r["server"], key, r[key]))
        check(r["opened"] + r["failed"] == 16, "%s: opened + failed != 16: %r" % (r["server"], r))
        check(r["connect_p50_us"] <= r["connect_p99_us"], "%s: p50 above p99: %r" % (r["server"], r))
    listener = results["listener"]
    check(listener["failed"] == 0 and listener["opened"] == 16 and listener["accepted"] == 16,
          "the listener lost clients: %r (stderr %s)" % (listener, err))


def test_bench_open():
    """bench open reports each of its measurements (the numbers themselves are not checked)."""
    rc, out, err = run("bench", "open", "--wait-ms", 100, "--trials", 3, "--spread-ms", 20, timeout=TIMEOUT * 2)
    check(rc == 0, "bench open: rc %d, %s" % (rc, err))
    text = out.decode("utf-8", "replace")
    check(len(re.findall(r"^wait +(non-blocking|blocking).* CPU over ", text, re.M)) == 2, "two wait lines in %r" % text)
    check(re.search(r"^appear .*, 3 trials: p50 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms", text, re.M),
          "an appear line in %r" % text)
    busy = r"^busy .*, 3 trials: p50" if WRAPPER or sys.platform == "win32" else r"^busy +skipped on Linux"
    check(re.search(busy, text, re.M), "a busy line in %r" % text)
    rc, _, err = run("bench", "open", "--only", "nothing")
    check(rc == 2, "bench open --only nothing: rc %d, %s" % (rc, err))


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_")]


def run_tests():
    failed = 0
    for t in TESTS:
        if ARGS.k not in t.__name__:
            continue
        for attempt in (1, 2):
            server_before = wineserver_pid()
            outcome, detail, seconds = run_one(t)
            # Under Wine every tool process talks to one wineserver. If it dies, a process that was
            # moving data exits with code 0 and nothing on stderr, and an idle one hangs: the test
            # fails for a reason that is not npipe's (seen once in ~55 runs of the killed-peer
            # tests, whose signature that is). Then, once, start a new keeper and run the test
            # again; any other failure, or a second one, counts.
            if outcome == "FAIL" and attempt == 1 and server_before is not None and wineserver_pid() != server_before:
                print("again %-32s %5.1fs  the wineserver (pid %d) died during the test; first failure: %s"
                      % (t.__name__, seconds, server_before, detail.strip()), flush=True)
                restart_keeper()
                continue
            break
        if outcome == "FAIL":
            failed += 1
        print("%-5s %-32s %5.1fs%s" % (outcome, t.__name__, seconds, detail), flush=True)
    return failed


def run_one(t):
    t0 = time.monotonic()
    try:
        note = t()
        return "ok", "  (" + note + ")" if note else "", time.monotonic() - t0
    except Failed as e:
        return "FAIL", "  %s" % e, time.monotonic() - t0
    except Exception:
        return "FAIL", "\n" + traceback.format_exc(), time.monotonic() - t0


def wineserver_pid():
    """Under Wine: the pid of the wineserver of WINEPREFIX, or None (scripts/wineserver_pid.py)."""
    return prefix_server_pid(os.environ["WINEPREFIX"]) if UNDER_WINE else None


def start_keeper():
    """Under a wrapper: starts the keeper (see main); under Wine, waits for its wineserver."""
    KEEPER[0] = start("listen", name("keepalive"), "--echo")
    if UNDER_WINE:
        wait_until(lambda: wineserver_pid() is not None, "the wineserver to start")


def restart_keeper():
    stop(KEEPER[0])
    start_keeper()


def main():
    global ARGS, WRAPPER, TIMEOUT, TMP, UNDER_WINE
    ap = argparse.ArgumentParser()
    ap.add_argument("--npipe", required=True)
    ap.add_argument("--wrapper", default="")
    ap.add_argument("-k", default="")
    ap.add_argument("-v", "--verbose", action="store_true")
    ARGS = ap.parse_args()
    if ARGS.wrapper:
        WRAPPER = shlex.split(ARGS.wrapper)
        TIMEOUT = 60
        UNDER_WINE = os.path.basename(WRAPPER[0]).startswith("wine")
        if UNDER_WINE:
            os.environ.setdefault("WINEDEBUG", "-all")
            os.environ.setdefault("WINEPREFIX", os.path.join(os.path.expanduser("~"), ".wine-npipe"))
    t_all = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="npipe-tooltest-") as tmp:
        TMP = tmp
        # Under Wine, one idle tool process keeps wineserver alive for the whole run: without a
        # client it exits after a few seconds, and on a loaded machine a program starting during
        # that shutdown failed with "wine client error:104" (runs that showed it also had a
        # 10 s-bounded connect hang; a steady wineserver is the likely cure for both).
        try:
            if WRAPPER:
                start_keeper()
            failed = run_tests()
        finally:
            if KEEPER[0]:
                stop(KEEPER[0])
    if not WRAPPER:
        # Servers this script killed leave their socket files behind (the library replaces stale
        # ones, but /tmp need not collect them).
        import glob
        tmpdir = os.environ.get("TMPDIR") or "/tmp"
        for path in glob.glob(os.path.join(tmpdir, "CoreFxPipe_npipe-tooltest-%d-*" % os.getpid())):
            try:
                os.unlink(path)
            except OSError:
                pass
    print("%d failed, %.1fs" % (failed, time.monotonic() - t_all))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
