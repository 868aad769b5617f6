"""npipe against multiprocessing.connection (AF_UNIX on Linux, a named pipe on Windows), one
machine, one run, the two transports alternating so both see the same load.

Each round, per transport: a peer process connects, then this process

* streams ``--mib`` MiB in ``--chunk`` byte chunks to the peer, which reads them into one
  preallocated buffer and answers one byte at the end (throughput, MiB/s);
* sends ``--pings`` one-byte messages, each echoed by the peer before the next (round trips/s).

npipe uses its blocking helpers (``sendall``, ``recv_into``, ``recv``); multiprocessing uses
``send_bytes`` / ``recv_bytes_into`` / ``recv_bytes``. Connection setup is not timed. It prints
every round, then the medians and npipe's ratios to multiprocessing. It reports numbers only.

    python3 bench.py [--rounds 3] [--mib 128] [--chunk 65536] [--pings 5000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from multiprocessing import connection as mpc
from pathlib import Path
from typing import Dict, List, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import npipe  # noqa: E402

TIMEOUT = 60.0


# -- the peer (a child process) -------------------------------------------------------------------
def peer_npipe(name: str, total: int, chunk: int, pings: int) -> None:
    with npipe.open(name, timeout=TIMEOUT) as pipe:
        buf = bytearray(max(chunk, 1 << 16))
        view = memoryview(buf)
        got = 0
        recv_into = getattr(pipe, "recv_into", None)
        while got < total:
            if recv_into is not None:
                n = recv_into(view, timeout=TIMEOUT)
            else:  # a binding without recv_into (for measuring older versions)
                n = len(pipe.recv(len(buf), timeout=TIMEOUT))
            if n == 0:
                raise EOFError("the sender left early")
            got += n
        pipe.sendall(b"k", timeout=TIMEOUT)
        for _ in range(pings):
            pipe.sendall(pipe.recv(1, timeout=TIMEOUT), timeout=TIMEOUT)


def peer_mp(address: str, total: int, chunk: int, pings: int) -> None:
    conn = mpc.Client(address)
    try:
        buf = bytearray(max(chunk, 1 << 16))
        got = 0
        while got < total:
            got += conn.recv_bytes_into(buf)
        conn.send_bytes(b"k")
        for _ in range(pings):
            conn.send_bytes(conn.recv_bytes())
    finally:
        conn.close()


# -- the measuring side ------------------------------------------------------------------------
def spawn(kind: str, where: str, args: argparse.Namespace) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--peer", kind, "--where", where, "--mib", str(args.mib),
                             "--chunk", str(args.chunk), "--pings", str(args.pings)])


def drive(send, recv_ack, ping, total: int, chunk: int, pings: int) -> Tuple[float, float]:
    payload = bytes(os.urandom(chunk))
    sent = 0
    start = time.perf_counter()
    while sent < total:
        send(payload)
        sent += chunk
    recv_ack()
    elapsed = time.perf_counter() - start
    mib_s = total / (1 << 20) / elapsed
    start = time.perf_counter()
    for _ in range(pings):
        ping()
    rtt_s = pings / (time.perf_counter() - start)
    return mib_s, rtt_s


def round_npipe(args: argparse.Namespace) -> Tuple[float, float]:
    name = f"npipe-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    total = args.mib << 20
    with npipe.Server(name) as server:
        child = spawn("npipe", name, args)
        try:
            server.connect(timeout=TIMEOUT)

            def send(data: bytes) -> None:
                server.sendall(data, timeout=TIMEOUT)

            def ack() -> None:
                if server.recv(1, timeout=TIMEOUT) != b"k":
                    raise RuntimeError("no ack")

            def ping() -> None:
                server.sendall(b"p", timeout=TIMEOUT)
                if not server.recv(1, timeout=TIMEOUT):
                    raise EOFError("peer left")

            result = drive(send, ack, ping, total, args.chunk, args.pings)
        finally:
            if child.wait(TIMEOUT) != 0:
                raise RuntimeError(f"npipe peer failed ({child.returncode})")
    return result


def round_mp(args: argparse.Namespace) -> Tuple[float, float]:
    total = args.mib << 20
    if sys.platform == "win32":
        address = rf"\\.\pipe\npipe-bench-mp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        listener = mpc.Listener(address, family="AF_PIPE")
    else:
        address = os.path.join(tempfile.gettempdir(), f"npipe-bench-mp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        listener = mpc.Listener(address, family="AF_UNIX")
    with listener:
        child = spawn("mp", address, args)
        try:
            conn = listener.accept()
            with conn:
                def ack() -> None:
                    if conn.recv_bytes() != b"k":
                        raise RuntimeError("no ack")

                def ping() -> None:
                    conn.send_bytes(b"p")
                    conn.recv_bytes()

                result = drive(conn.send_bytes, ack, ping, total, args.chunk, args.pings)
        finally:
            if child.wait(TIMEOUT) != 0:
                raise RuntimeError(f"multiprocessing peer failed ({child.returncode})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mib", type=int, default=128)
    parser.add_argument("--chunk", type=int, default=64 * 1024)
    parser.add_argument("--pings", type=int, default=5000)
    parser.add_argument("--peer", choices=["npipe", "mp"], help=argparse.SUPPRESS)
    parser.add_argument("--where", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer == "npipe":
        return peer_npipe(args.where, args.mib << 20, args.chunk, args.pings)
    if args.peer == "mp":
        return peer_mp(args.where, args.mib << 20, args.chunk, args.pings)

    print(f"npipe {npipe.__version__} (library {npipe.library_version()}, {npipe.library_path()}), "
          f"Python {sys.version.split()[0]} on {sys.platform}")
    print(f"{args.mib} MiB in {args.chunk}-byte chunks, then {args.pings} one-byte round trips; {args.rounds} rounds")
    results: Dict[str, List[Tuple[float, float]]] = {"multiprocessing": [], "npipe": []}
    for i in range(args.rounds):
        # Alternate which goes first, so neither always runs on a cold (or warm) machine.
        order = [("multiprocessing", round_mp), ("npipe", round_npipe)]
        for label, run in (order if i % 2 == 0 else order[::-1]):
            mib_s, rtt = run(args)
            results[label].append((mib_s, rtt))
            print(f"  round {i + 1} {label:>15}: {mib_s:8.0f} MiB/s {rtt:9.0f} round trips/s", flush=True)
    med = {k: (statistics.median(t for t, _ in v), statistics.median(r for _, r in v)) for k, v in results.items()}
    for label, (mib_s, rtt) in med.items():
        print(f"median {label:>15}: {mib_s:8.0f} MiB/s {rtt:9.0f} round trips/s")
    mp_t, mp_r = med["multiprocessing"]
    np_t, np_r = med["npipe"]
    print(f"npipe / multiprocessing: throughput {np_t / mp_t:.2f}x, ping-pong {np_r / mp_r:.2f}x")


if __name__ == "__main__":
    main()
