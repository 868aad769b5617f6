"""The blocking helpers on npipe_wait (one call across the boundary when the pipe is ready, the
caller's timeout in every timeout error, close from another thread ending every wait), and the
non-blocking open (``blocking=False``) driven by a Poll or by the blocking helpers."""
from __future__ import annotations

import os
import threading
import time
import unittest
from typing import Any, Callable, List

import npipe
from npipe import _errors
from support import DEADLINE, blocking_server, ended_by_close, pump_until, receive_all, run_in_thread, unique_name, wait_for


class CountingLibrary:
    """Stands in for a pipe's library: records the name of every function called through it."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib
        self.calls: List[str] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = getattr(self._lib, name)

        def call(*args: Any) -> Any:
            self.calls.append(name)
            return fn(*args)

        return call


def count_calls(pipe: npipe.Pipe) -> CountingLibrary:
    counting = CountingLibrary(pipe._lib)
    pipe._lib = counting  # type: ignore[assignment]
    return counting


class BoundaryCrossingsTest(unittest.TestCase):
    def test_recv_with_data_there_is_one_call(self) -> None:
        name = unique_name("one")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client:
            server.connect(timeout=DEADLINE)
            server.sendall(b"first", timeout=DEADLINE)
            # The first recv binds the client to its private poll: before that, a read answers
            # EAGAIN ("not registered") and the recv waits once.
            self.assertEqual(client.recv(timeout=DEADLINE), b"first")
            server.sendall(b"ready", timeout=DEADLINE)  # handed to the OS: the client can read it now
            calls = count_calls(client)
            self.assertEqual(client.recv(timeout=DEADLINE), b"ready")
            self.assertEqual(calls.calls, ["npipe_read"])

    def test_recv_that_waits_is_read_wait_read(self) -> None:
        name = unique_name("rwr")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client:
            server.connect(timeout=DEADLINE)
            calls = count_calls(client)
            timer = threading.Timer(0.1, server.sendall, args=(b"later",), kwargs={"timeout": DEADLINE})
            timer.start()
            self.assertEqual(client.recv(timeout=DEADLINE), b"later")
            timer.join(DEADLINE)
            # read, then (wait, read) until the data came: each wait is one slice at most
            self.assertEqual(calls.calls[0], "npipe_read")
            self.assertEqual(calls.calls[1::2], ["npipe_wait"] * (len(calls.calls) // 2))
            self.assertEqual(calls.calls[2::2], ["npipe_read"] * (len(calls.calls) // 2))
            self.assertGreaterEqual(len(calls.calls), 3)

    def test_recv_without_timeout_after_one_that_waited_waits_first(self) -> None:
        """A recv without a timeout after one that had to wait waits first (the wait may take the
        bytes inside the OS's read): wait, read; bytes already there end that wait at once. With
        a timeout it reads first, so a timeout of 0 still takes what is there."""
        name = unique_name("wfirst")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client:
            server.connect(timeout=DEADLINE)
            calls = count_calls(client)
            for payload in (b"one", b"two"):  # nothing there yet: each recv has to wait
                calls.calls.clear()
                got: List[bytes] = []
                thread, raised = run_in_thread(lambda: got.append(client.recv()))
                self.assertTrue(wait_for(lambda: "npipe_wait" in calls.calls))
                server.sendall(payload, timeout=DEADLINE)
                thread.join(DEADLINE)
                self.assertEqual((got, raised), ([payload], []))
            self.assertEqual(calls.calls[:2], ["npipe_wait", "npipe_read"])  # the second waited first
            server.sendall(b"three", timeout=DEADLINE)  # handed to the OS: there before the recv
            calls.calls.clear()
            self.assertEqual(client.recv(), b"three")
            self.assertEqual(calls.calls, ["npipe_wait", "npipe_read"])
            server.sendall(b"four", timeout=DEADLINE)
            calls.calls.clear()
            self.assertEqual(client.recv(timeout=0), b"four")
            self.assertEqual(calls.calls, ["npipe_read"])

    def test_sendall_overlaps_and_flush_waits_without_spinning(self) -> None:
        # The peer stalls for 0.5 s before it reads. The client fills the OS buffer until the
        # library holds some bytes too; then sendall adds a few: they are accepted at once (there
        # is room) and sendall returns without waiting for the OS, in one call. flush(blocking=True)
        # waits for them; WRITABLE holds all along, so that wait must pause between its questions
        # instead of spinning.
        name = unique_name("stall")
        got = bytearray()
        sent = bytearray()
        thread, errors = blocking_server(name, receive_all(got, stall=0.5))
        with npipe.open(name, timeout=DEADLINE) as client:
            client.sendall(b"", timeout=DEADLINE)  # binds the client to its private poll
            chunk = os.urandom(16 * 1024)
            while client.info().write_pending == 0:
                sent += chunk[:client.write(chunk)]
                self.assertLess(len(sent), 64 << 20)
            calls = count_calls(client)
            client.sendall(b"tail", timeout=DEADLINE)
            sent += b"tail"
            self.assertEqual(calls.calls, ["npipe_write"])
            self.assertFalse(client.flush())  # the non-blocking question: still pending
            self.assertTrue(client.flush(blocking=True, timeout=DEADLINE))
            self.assertEqual(client.info().write_pending, 0)
            asked = len(calls.calls)
        thread.join(DEADLINE)
        self.assertEqual(errors, {})
        self.assertEqual(bytes(got), bytes(sent))
        self.assertLess(asked, 200, f"{asked} calls: {calls.calls.count('npipe_flush')} flushes, "
                                    f"{calls.calls.count('npipe_wait')} waits")

    def test_recv_into_caller_buffers_one_call_when_data_is_there(self) -> None:
        name = unique_name("into")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client:
            server.connect(timeout=DEADLINE)
            server.sendall(b"0123456789", timeout=DEADLINE)
            buf = bytearray(b"." * 16)
            got = client.recv_into(memoryview(buf)[2:], 4, timeout=DEADLINE)  # a view, at most 4 bytes
            self.assertEqual((got, bytes(buf[:8])), (4, b"..0123.."))
            calls = count_calls(client)
            self.assertEqual(client.recv_into(buf, timeout=DEADLINE), 6)
            self.assertEqual(bytes(buf[:6]), b"456789")
            self.assertEqual(calls.calls, ["npipe_read"])
            buf.extend(b"!")  # recv_into let go of the bytearray: it can be resized again
            self.assertEqual(client.recv_into(bytearray(), timeout=DEADLINE), 0)
            with self.assertRaises(ValueError):
                client.recv_into(buf, len(buf) + 1)
            with self.assertRaises(TypeError):
                client.recv_into(b"read-only", timeout=DEADLINE)
            self.assertEqual(client.send(memoryview(b"abc")), 3)
            self.assertEqual(server.recv(timeout=DEADLINE), b"abc")
            server.close()
            self.assertEqual(client.recv_into(buf, timeout=DEADLINE), 0)  # EOF

    def test_recv_reuses_its_buffer_and_returns_exact_bytes(self) -> None:
        name = unique_name("scratch")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client:
            server.connect(timeout=DEADLINE)
            for size in (1, 5, 70000, 3):  # 70000 > the reused buffer's first size
                payload = os.urandom(size)
                server.sendall(payload, timeout=DEADLINE)
                got = bytearray()
                while len(got) < size:
                    got += client.recv(size - len(got), timeout=DEADLINE)
                self.assertEqual(bytes(got), payload)
                self.assertIs(type(client.recv(0)), bytes)


class CallerTimeoutTest(unittest.TestCase):
    def test_timeouts_name_the_callers_timeout(self) -> None:
        name = unique_name("tname")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client:
            server.connect(timeout=DEADLINE)
            for call, what in ((lambda: client.recv(timeout=0.6), "recv"),
                               (lambda: client.recv_msg(timeout=0.6), "recv_msg"),
                               (lambda: client.sendall(b"x" * (64 << 20), timeout=0.6), "sendall"),
                               (lambda: client.recv_into(bytearray(8), timeout=0.6), "recv_into"),
                               (lambda: client.flush(blocking=True, timeout=0.6), "flush")):
                with self.subTest(what=what):
                    with self.assertRaises(npipe.PipeTimeoutError) as cm:
                        call()
                    self.assertEqual(cm.exception.code, _errors.ETIMEDOUT)
                    self.assertIn(what, cm.exception.message)
                    self.assertIn("0.6 s", cm.exception.message)
                    self.assertNotIn("0.25", cm.exception.message)  # not the internal slice

    def test_open_timeout_names_the_callers_timeout(self) -> None:
        missing = unique_name("otname")
        with self.assertRaises(npipe.PipeTimeoutError) as cm:
            npipe.open(missing, timeout=0.6)
        self.assertEqual(cm.exception.code, _errors.ETIMEDOUT)
        self.assertIn("gave up after 0.6 s", cm.exception.message)
        self.assertIn(missing, cm.exception.message)  # the reason: nobody listens on that name
        self.assertNotIn("250 ms", cm.exception.message)  # not the internal slice

    def test_connect_timeout_names_the_callers_timeout(self) -> None:
        with npipe.Server(unique_name("ctname")) as server:
            with self.assertRaises(npipe.PipeTimeoutError) as cm:
                server.connect(timeout=0.3)
            self.assertIn("connect did not complete within 0.3 s", cm.exception.message)


class CloseEndsWaitsTest(unittest.TestCase):
    def test_close_ends_every_blocked_helper(self) -> None:
        # Three threads block on one client: two in recv, one in sendall with the buffer full.
        name = unique_name("xclose3")
        with npipe.Server(name) as server:
            client = npipe.open(name, timeout=DEADLINE)
            server.connect(timeout=DEADLINE)
            client.sendall(b"", timeout=DEADLINE)  # binds the client to its private poll
            sent = 0
            while True:  # fill the client's buffer, so a sendall must wait for room
                try:
                    sent += client.write(b"f" * 65536)
                except BlockingIOError:
                    break
                self.assertLess(sent, 256 << 20)
            blocked = [run_in_thread(lambda: client.recv(timeout=DEADLINE)),
                       run_in_thread(lambda: client.recv_msg(timeout=DEADLINE)),
                       run_in_thread(lambda: client.sendall(b"more", timeout=DEADLINE))]
            start = time.monotonic()
            client.close()  # ends the waits at once; close does not drain for a peer that never reads
            self.assertEqual([ended_by_close(*b) for b in blocked], [None, None, None])
            self.assertLess(time.monotonic() - start, DEADLINE / 2)

    def test_blocking_connect_ended_by_close(self) -> None:
        server = npipe.Server(unique_name("xconn"))
        blocked = run_in_thread(lambda: server.connect(timeout=DEADLINE))
        server.close()
        self.assertIsNone(ended_by_close(*blocked))


class NonBlockingOpenTest(unittest.TestCase):
    def test_server_appears_after_the_client_started_waiting(self) -> None:
        name = unique_name("nbo")
        with npipe.Poll() as poll:
            client = npipe.open(name, timeout=DEADLINE, blocking=False)  # nobody listens yet
            with client:
                poll.register(client, 2)
                with self.assertRaises(npipe.WouldBlockError) as cm:
                    client.write(b"early")
                self.assertIn("connection in progress", cm.exception.message)
                self.assertEqual(poll.wait(0.1), [])  # the attempts found nothing: no event yet
                with npipe.Server(name) as server:
                    poll.register(server, 1)
                    server.connect(blocking=False)
                    pump_until(poll, lambda evs: any(e.token == 2 and e.connected for e in evs))
                    self.assertIsNone(client.take_error())
                    client.write(b"hello")
                    got = bytearray()

                    def step(_: List[npipe.Event]) -> bool:
                        try:
                            got.extend(server.read())
                        except (BlockingIOError, npipe.NotConnectedError):
                            pass
                        return bytes(got) == b"hello"

                    pump_until(poll, step)

    def test_failed_open_is_reported_by_take_error_and_then_by_io(self) -> None:
        with npipe.Poll() as poll:
            with npipe.open(unique_name("nbo-absent"), timeout=0.2, blocking=False) as client:
                poll.register(client, 1)
                events = pump_until(poll, lambda evs: any(e.connected for e in evs))
                self.assertTrue(any(e.error for e in events))
                err = client.take_error()
                self.assertIsInstance(err, npipe.PipeTimeoutError)
                with self.assertRaises(npipe.PipeTimeoutError):
                    client.read()
            with npipe.open(unique_name("nbo-once"), blocking=False) as once:  # timeout 0: one attempt
                poll.register(once, 2)
                pump_until(poll, lambda evs: any(e.token == 2 and e.connected for e in evs))
                self.assertIsInstance(once.take_error(), npipe.PipeNotFoundError)

    def test_bad_name_fails_at_once(self) -> None:
        with self.assertRaises(npipe.InvalidArgumentError):
            npipe.open("bad/name", timeout=DEADLINE, blocking=False)

    def test_blocking_helpers_drive_a_non_blocking_open(self) -> None:
        # Opened without a poll, the client connects while sendall waits (npipe_wait drives it).
        name = unique_name("nbo-helpers")
        client = npipe.open(name, timeout=DEADLINE, blocking=False)
        with client:
            thread, raised = run_in_thread(lambda: client.sendall(b"through the wait", timeout=DEADLINE))
            with npipe.Server(name) as server:
                server.connect(timeout=DEADLINE)
                thread.join(DEADLINE)
                self.assertFalse(thread.is_alive())
                self.assertEqual(raised, [])
                got = b""
                while len(got) < 16:
                    got += server.recv(timeout=DEADLINE)
                self.assertEqual(got, b"through the wait")
        with npipe.open(unique_name("nbo-helpers-absent"), timeout=0.2, blocking=False) as absent:
            with self.assertRaises(npipe.PipeTimeoutError):
                absent.recv(timeout=DEADLINE)  # the open's failure, not the recv's deadline


if __name__ == "__main__":
    unittest.main()
