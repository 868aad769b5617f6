"""Shared helpers of the npipe Python tests: unique names and bounded waits."""
from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

import npipe

_counter = itertools.count()
DEADLINE = 10.0  # no single wait in these tests may take longer


def unique_name(tag: str = "t") -> str:
    """A pipe name no other test (or concurrent test run) uses."""
    return f"npipe-py-{tag}-{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:6]}"


def wait_for(predicate: Callable[[], bool], timeout: float = DEADLINE, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def pump_until(poll: npipe.Poll, done: Callable[[List[npipe.Event]], bool], timeout: float = DEADLINE) -> List[npipe.Event]:
    """Wait on ``poll`` until ``done(events_so_far)`` holds; fails the test (AssertionError) after ``timeout``."""
    seen: List[npipe.Event] = []
    deadline = time.monotonic() + timeout
    while not done(seen):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"condition not reached within {timeout} s; events: {seen!r}")
        seen += poll.wait(min(left, 0.2))
    return seen


def connected_pair(poll: npipe.Poll, name: Optional[str] = None, *, server_token: int = 1, client_token: int = 2,
                   message: bool = False, interests: int = npipe.READABLE | npipe.WRITABLE,
                   **server_options: object) -> Tuple[npipe.Server, npipe.Client]:
    """A server and a client, both registered with ``poll`` and connected."""
    name = name or unique_name("pair")
    server = npipe.Server(name, message=message, **server_options)  # type: ignore[arg-type]
    poll.register(server, server_token, interests)
    server.connect(blocking=False)
    client = npipe.Client(name, message=message, timeout=5)
    poll.register(client, client_token, interests)
    pump_until(poll, lambda _: server.connect(blocking=False))
    return server, client


def read_available(pipe: npipe.Pipe, n: int = 65536) -> Tuple[bytes, bool]:
    """Read until WouldBlockError or EOF: (bytes, eof)."""
    out = bytearray()
    while True:
        try:
            chunk = pipe.read(n)
        except BlockingIOError:
            return bytes(out), False
        if not chunk:
            return bytes(out), True
        out += chunk


def blocking_server(name: str, handler: Callable[[npipe.Server], None], **options: object) -> Tuple[threading.Thread, Dict[str, BaseException]]:
    """Run ``handler(server)`` in a thread once a client connected; errors land in the dict."""
    errors: Dict[str, BaseException] = {}
    server = npipe.Server(name, **options)  # type: ignore[arg-type]

    def run() -> None:
        try:
            with server:
                server.connect(timeout=DEADLINE)
                handler(server)
        except BaseException as e:  # reported by the test
            errors["server"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def receive_all(into: bytearray, stall: float = 0.0) -> Callable[[npipe.Server], None]:
    """A blocking_server handler that reads until EOF into ``into``, after ``stall`` seconds of
    reading nothing (a peer that is slow to start, for the test's sake, not a synchronisation)."""

    def serve(server: npipe.Server) -> None:
        if stall:
            time.sleep(stall)
        while True:
            chunk = server.recv(1 << 16, timeout=DEADLINE)
            if not chunk:
                return
            into.extend(chunk)

    return serve


def run_in_thread(call: Callable[[], object]) -> Tuple[threading.Thread, List[BaseException]]:
    """Runs ``call`` in a daemon thread; what it raises lands in the list."""
    raised: List[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as e:  # reported by the test
            raised.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, raised


def ended_by_close(thread: threading.Thread, raised: List[BaseException]) -> Optional[str]:
    """None when ``thread`` (from run_in_thread) ended within DEADLINE raising ValueError, the
    error of a closed pipe; else what went wrong."""
    thread.join(DEADLINE)
    if thread.is_alive():
        return f"still blocked {DEADLINE} s after the close"
    if len(raised) != 1 or not isinstance(raised[0], ValueError):
        return f"expected one ValueError, got {raised!r}"
    return None


def open_fds() -> List[str]:
    """This process's open file descriptors (Linux), with what they point to."""
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds.append(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass  # the listing's own descriptor, already closed
    return sorted(fds)
