"""Closing (explicit, `with`, garbage collector), use after close, fd leaks, timeouts, and the
private poll behind the blocking helpers."""
from __future__ import annotations

import ctypes
import gc
import os
import signal
import threading
import time
import unittest
import weakref

import npipe
from npipe import _native
from support import (DEADLINE, blocking_server, connected_pair, ended_by_close, open_fds, pump_until, receive_all,
                     run_in_thread, unique_name, wait_for)


class UseAfterCloseTest(unittest.TestCase):
    def test_closed_pipe_raises_value_error_like_a_file(self) -> None:
        with npipe.Poll() as poll:
            server, client = connected_pair(poll)
            for pipe in (server, client):
                pipe.close()
                pipe.close()  # idempotent
                self.assertTrue(pipe.closed)
                calls = [lambda: pipe.read(1), lambda: pipe.readinto(bytearray(1)), lambda: pipe.write(b"x"),
                         lambda: pipe.writev([b"x"]), lambda: pipe.read_msg(), lambda: pipe.flush(),
                         lambda: pipe.info(), lambda: pipe.raw_handle(), lambda: pipe.take_error(),
                         lambda: pipe.recv(1, timeout=0.1), lambda: pipe.sendall(b"x", timeout=0.1),
                         lambda: pipe.recv_msg(timeout=0.1), lambda: pipe.handle, lambda: poll.register(pipe, 1),
                         lambda: pipe.__enter__()]
                for call in calls:
                    with self.assertRaises(ValueError):
                        call()
                self.assertIn("closed", repr(pipe))
            with self.assertRaises(ValueError):
                server.connect(timeout=0.1)
            with self.assertRaises(ValueError):
                server.disconnect()

    def test_closed_poll_raises_value_error(self) -> None:
        poll = npipe.Poll()
        server = npipe.Server(unique_name("pc"))
        poll.close()
        poll.close()
        self.assertTrue(poll.closed)
        for call in (lambda: poll.wait(0), lambda: poll.wake(1), lambda: poll.register(server, 1),
                     lambda: poll.modify(server, 1), lambda: poll.unregister(server), lambda: poll.handle,
                     lambda: poll.__enter__()):
            with self.assertRaises(ValueError):
                call()
        server.close()

    def test_with_closes(self) -> None:
        with npipe.Poll() as poll, npipe.Server(unique_name("with")) as server:
            pass
        self.assertTrue(poll.closed)
        self.assertTrue(server.closed)

    def test_close_from_another_thread_ends_a_blocking_recv(self) -> None:
        name = unique_name("xclose")
        with npipe.Server(name) as server:
            client = npipe.open(name, timeout=DEADLINE)
            server.connect(timeout=DEADLINE)
            blocked = run_in_thread(lambda: client.recv(timeout=DEADLINE))
            time.sleep(0.3)  # likely inside the wait by then; either way the close must end the recv
            client.close()
            self.assertIsNone(ended_by_close(*blocked))


class GarbageCollectionTest(unittest.TestCase):
    def test_gc_closes_handles(self) -> None:
        lib = _native.library()
        poll = npipe.Poll()
        server = npipe.Server(unique_name("gc"))
        handles = (poll.handle, server.handle)
        ref = weakref.ref(server)
        del poll, server
        gc.collect()
        self.assertIsNone(ref())
        info = _native.InfoStruct()
        info.size = ctypes.sizeof(info)
        self.assertEqual(lib.npipe_get_info(handles[1], info), npipe._errors.EBADF)
        self.assertEqual(lib.npipe_poll_close(handles[0]), npipe._errors.EBADF)  # already closed

    def test_no_fd_leak_over_many_cycles(self) -> None:
        def cycle(i: int) -> None:
            name = unique_name("leak")
            if i % 3 == 0:  # explicit close through `with`, on a poll
                with npipe.Poll() as poll:
                    s, c = connected_pair(poll, name)
                    with s, c:
                        c.write(b"x")
            elif i % 3 == 1:  # blocking helpers (private polls), closed by the garbage collector
                s = npipe.Server(name)
                c = npipe.open(name, timeout=DEADLINE)
                s.connect(timeout=DEADLINE)
                c.sendall(b"abc", timeout=DEADLINE)
                self.assertEqual(s.recv(3, timeout=DEADLINE), b"abc")
                del s, c
            else:  # never registered, dropped
                s = npipe.Server(name)
                c = npipe.open(name, timeout=DEADLINE)
                del s, c

        for i in range(6):  # warm up: lazily created library state
            cycle(i)
        gc.collect()
        before = open_fds()
        for i in range(300):
            cycle(i)
        gc.collect()
        wait_for(lambda: len(open_fds()) <= len(before), timeout=5)  # lingering closes end within ~1 s
        after = open_fds()
        self.assertLessEqual(len(after), len(before), f"leaked: {sorted(set(after) - set(before))}")


class TimeoutTest(unittest.TestCase):
    def assertTookAbout(self, start: float, expected: float) -> None:
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, expected * 0.9)
        self.assertLess(elapsed, expected + 2.0)

    def test_poll_wait_timeout(self) -> None:
        with npipe.Poll() as poll:
            start = time.monotonic()
            self.assertEqual(poll.wait(0.3), [])
            self.assertTookAbout(start, 0.3)
            start = time.monotonic()
            self.assertEqual(poll.wait(0), [])
            self.assertLess(time.monotonic() - start, 0.5)

    def test_recv_timeout(self) -> None:
        name = unique_name("rto")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client:
            server.connect(timeout=DEADLINE)
            start = time.monotonic()
            with self.assertRaises(TimeoutError) as cm:
                client.recv(timeout=0.3)
            self.assertTookAbout(start, 0.3)
            self.assertIsInstance(cm.exception, npipe.PipeTimeoutError)
            self.assertIn("recv", cm.exception.message)
            with self.assertRaises(npipe.PipeTimeoutError):
                client.recv_msg(timeout=0.1)
            server.sendall(b"late", timeout=DEADLINE)
            self.assertEqual(client.recv(timeout=DEADLINE), b"late")  # still usable after a timeout

    def test_connect_timeout_then_connect(self) -> None:
        name = unique_name("cto")
        with npipe.Server(name) as server:
            start = time.monotonic()
            with self.assertRaises(npipe.PipeTimeoutError):
                server.connect(timeout=0.3)
            self.assertTookAbout(start, 0.3)
            with npipe.open(name, timeout=DEADLINE):
                self.assertTrue(server.connect(timeout=DEADLINE))

    def test_sendall_timeout_when_peer_does_not_read(self) -> None:
        name = unique_name("sto")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client:
            server.connect(timeout=DEADLINE)
            start = time.monotonic()
            with self.assertRaises(npipe.PipeTimeoutError):
                client.sendall(b"x" * (64 * 1024 * 1024), timeout=0.5)
            self.assertTookAbout(start, 0.5)


class InterruptTest(unittest.TestCase):
    """Long waits are sliced, so Ctrl-C (SIGINT -> KeyboardInterrupt) ends them promptly."""

    def setUp(self) -> None:
        if threading.current_thread() is not threading.main_thread() or \
                signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            self.skipTest("needs Python's own SIGINT handler in the main thread")

    def interrupt_after(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, os.kill, args=(os.getpid(), signal.SIGINT))
        timer.start()
        self.addCleanup(timer.cancel)
        return timer

    def test_ctrl_c_ends_poll_wait(self) -> None:
        with npipe.Poll() as poll:
            self.interrupt_after(0.3)
            start = time.monotonic()
            with self.assertRaises(KeyboardInterrupt):
                poll.wait(DEADLINE)
            self.assertLess(time.monotonic() - start, DEADLINE / 2)
            poll.wake(1)
            self.assertEqual([e.token for e in poll.wait(1)], [1])  # still usable

    def test_ctrl_c_ends_recv(self) -> None:
        name = unique_name("sigint")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client:
            server.connect(timeout=DEADLINE)
            self.interrupt_after(0.3)
            start = time.monotonic()
            with self.assertRaises(KeyboardInterrupt):
                client.recv(timeout=DEADLINE)
            self.assertLess(time.monotonic() - start, DEADLINE / 2)
            server.sendall(b"after", timeout=DEADLINE)
            self.assertEqual(client.recv(timeout=DEADLINE), b"after")


class PrivatePollTest(unittest.TestCase):
    def test_blocking_helpers_bind_the_pipe_to_a_private_poll(self) -> None:
        name = unique_name("priv")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client, npipe.Poll() as poll:
            server.connect(timeout=DEADLINE)
            with self.assertRaises(npipe.PipeExistsError) as cm:
                poll.register(server, 1)
            self.assertIn("blocking helper", cm.exception.message)
            self.assertIsInstance(cm.exception, FileExistsError)
            poll.register(client, 2)  # a pipe never used with the helpers registers fine
            with self.assertRaises(npipe.PipeExistsError) as cm:
                client.recv(timeout=0.1)
            self.assertIn("registered with a Poll", cm.exception.message)
            self.assertIs(client.poll, poll)

    def test_close_drains_what_sendall_did_not_wait_for(self) -> None:
        # write() on a pipe with a private poll, then close(): close drains for up to `linger`.
        name = unique_name("drain")
        payload = bytes(range(256)) * 4096  # 1 MiB
        got = bytearray()
        thread, errors = blocking_server(name, receive_all(got))
        client = npipe.open(name, timeout=DEADLINE, linger=5)
        client.sendall(b"", timeout=DEADLINE)  # creates the private poll
        sent = 0
        deadline = time.monotonic() + DEADLINE
        while sent < len(payload) and time.monotonic() < deadline:
            try:
                sent += client.write(payload[sent:])
            except BlockingIOError:
                break  # buffer full: the rest stays unsent, what was accepted must arrive
        client.close()
        thread.join(DEADLINE)
        self.assertFalse(thread.is_alive())
        self.assertEqual(errors, {})
        self.assertEqual(bytes(got), payload[:sent])


if __name__ == "__main__":
    unittest.main()
