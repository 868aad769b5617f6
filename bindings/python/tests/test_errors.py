"""Status codes -> exception classes, and every error path the binding can reach, each with the
library's own message."""
from __future__ import annotations

import ctypes
import errno
import os
import pickle
import threading
import time
import unittest

import npipe
from npipe import _errors, _native
from support import DEADLINE, connected_pair, pump_until, unique_name

BUILTIN_BASES = {
    _errors.EAGAIN: (npipe.WouldBlockError, BlockingIOError),
    _errors.EINVAL: (npipe.InvalidArgumentError, ValueError),
    _errors.EBADF: (npipe.BadHandleError, None),
    _errors.ENOENT: (npipe.PipeNotFoundError, FileNotFoundError),
    _errors.EBUSY: (npipe.PipeBusyError, None),
    _errors.EEXIST: (npipe.PipeExistsError, FileExistsError),
    _errors.EACCES: (npipe.PipeAccessError, PermissionError),
    _errors.EPIPE: (npipe.PipeBrokenError, BrokenPipeError),
    _errors.ENOTCONN: (npipe.NotConnectedError, ConnectionError),
    _errors.ETIMEDOUT: (npipe.PipeTimeoutError, TimeoutError),
    _errors.ENOMEM: (npipe.OutOfMemoryError, MemoryError),
    _errors.ENAMETOOLONG: (npipe.NameTooLongError, ValueError),
    _errors.EMSGSIZE: (npipe.MessageTooLargeError, ValueError),
    _errors.ENOTSUP: (npipe.NotSupportedError, None),
    _errors.ECANCELED: (npipe.CanceledError, None),
    _errors.EIO: (npipe.PipeOSError, None),
}


class ErrorMappingTest(unittest.TestCase):
    def test_every_code_has_its_class_and_builtin_base(self) -> None:
        lib = _native.library()
        for code, (cls, builtin) in BUILTIN_BASES.items():
            with self.subTest(code=code):
                err = _errors.error_for(code, "detail", os_error=7)
                self.assertIs(type(err), cls)
                self.assertIsInstance(err, npipe.NpipeError)
                self.assertIsInstance(err, OSError)
                if builtin is not None:
                    self.assertIsInstance(err, builtin)
                self.assertEqual(err.code, code)
                self.assertEqual(err.name, lib.npipe_err_name(code).decode())  # the table matches the library's
                self.assertEqual(err.os_error, 7)
                self.assertEqual(err.message, "detail")
                self.assertIn("detail", str(err))
                self.assertIn(err.name, str(err))

    def test_unknown_negative_code_is_the_generic_error(self) -> None:
        err = _native.last_error(-1234)
        self.assertIs(type(err), npipe.NpipeError)
        self.assertEqual(err.code, -1234)
        self.assertEqual(err.name, "NPIPE_EUNKNOWN")

    def test_errno_matches_the_builtin_meaning(self) -> None:
        self.assertEqual(_errors.error_for(_errors.ENOENT, "x").errno, errno.ENOENT)
        self.assertEqual(_errors.error_for(_errors.ETIMEDOUT, "x").errno, errno.ETIMEDOUT)
        self.assertEqual(_errors.error_for(_errors.EAGAIN, "x").errno, errno.EAGAIN)

    def test_errors_pickle(self) -> None:
        err = pickle.loads(pickle.dumps(_errors.error_for(_errors.EPIPE, "gone", os_error=32)))
        self.assertIsInstance(err, npipe.PipeBrokenError)
        self.assertEqual((err.code, err.message, err.os_error, err.name), (_errors.EPIPE, "gone", 32, "NPIPE_EPIPE"))

    def test_strerror_text_from_the_library(self) -> None:
        self.assertTrue(_native.strerror(_errors.ENOENT))
        self.assertTrue(_native.strerror(-1234))  # never NULL, also for unknown codes


class ErrorPathTest(unittest.TestCase):
    """Real failures of the library, each mapped to its class with the library's message."""

    def assertLibraryError(self, cm: unittest.case._AssertRaisesContext, code: int) -> npipe.NpipeError:  # type: ignore[type-arg]
        err = cm.exception
        self.assertEqual(err.code, code, f"{err!r}")
        self.assertTrue(err.message and err.message != "no error", f"no specific message: {err!r}")
        return err

    def test_open_missing_is_file_not_found(self) -> None:
        with self.assertRaises(FileNotFoundError) as cm:
            npipe.open(unique_name("missing"))
        self.assertIsInstance(cm.exception, npipe.PipeNotFoundError)
        self.assertLibraryError(cm, _errors.ENOENT)

    def test_open_missing_with_timeout_is_timeout_error(self) -> None:
        start = time.monotonic()
        with self.assertRaises(TimeoutError) as cm:
            npipe.open(unique_name("missing"), timeout=0.3)
        elapsed = time.monotonic() - start
        self.assertIsInstance(cm.exception, npipe.PipeTimeoutError)
        self.assertLibraryError(cm, _errors.ETIMEDOUT)
        self.assertGreaterEqual(elapsed, 0.25)
        self.assertLess(elapsed, 5)

    def test_first_instance_on_existing_name_is_file_exists(self) -> None:
        name = unique_name("exists")
        with npipe.Server(name):
            with self.assertRaises(FileExistsError) as cm:
                npipe.Server(name, first_instance=True)
            self.assertIsInstance(cm.exception, npipe.PipeExistsError)
            self.assertLibraryError(cm, _errors.EEXIST)

    def test_bad_names_are_invalid_argument(self) -> None:
        for bad in ["", "a/b", "bad\udcffutf8"]:
            with self.subTest(name=bad):
                with self.assertRaises(npipe.InvalidArgumentError) as cm:
                    npipe.Server(bad)
                self.assertIsInstance(cm.exception, ValueError)
                self.assertLibraryError(cm, _errors.EINVAL)

    def test_nul_in_name_is_rejected_before_the_library(self) -> None:
        with self.assertRaises(npipe.InvalidArgumentError) as cm:
            npipe.Server("abc\0def")
        self.assertIn("NUL", cm.exception.message)

    def test_name_too_long(self) -> None:
        with self.assertRaises(npipe.NameTooLongError) as cm:
            npipe.Server("x" * 300)
        self.assertLibraryError(cm, _errors.ENAMETOOLONG)
        with self.assertRaises(npipe.NameTooLongError):
            npipe.resolve_name("x" * 300)

    def test_remote_name_not_supported_on_linux(self) -> None:
        with self.assertRaises(npipe.NotSupportedError) as cm:
            npipe.open("\\\\server\\pipe\\foo")
        self.assertLibraryError(cm, _errors.ENOTSUP)

    def test_unsupported_server_options_on_linux(self) -> None:
        with self.assertRaises(npipe.NotSupportedError) as cm:
            npipe.Server(unique_name("remote"), allow_remote=True)
        self.assertLibraryError(cm, _errors.ENOTSUP)
        with self.assertRaises(npipe.NotSupportedError) as cm:
            npipe.Server(unique_name("sddl"), sddl="D:P(A;;GA;;;OW)")
        self.assertLibraryError(cm, _errors.ENOTSUP)

    def test_invalid_options(self) -> None:
        with self.assertRaises(npipe.InvalidArgumentError) as cm:
            npipe.Server(unique_name("max"), max_instances=255)
        self.assertLibraryError(cm, _errors.EINVAL)
        with self.assertRaises(npipe.InvalidArgumentError) as cm:
            npipe.Server(unique_name("dir"), inbound_only=True, outbound_only=True)
        self.assertLibraryError(cm, _errors.EINVAL)

    def test_max_instances_reached_is_busy(self) -> None:
        name = unique_name("busy")
        with npipe.Server(name, max_instances=1):
            with self.assertRaises(npipe.PipeBusyError) as cm:
                npipe.Server(name, max_instances=1)
            self.assertLibraryError(cm, _errors.EBUSY)

    def test_read_on_unregistered_pipe_would_block_and_says_why(self) -> None:
        with npipe.Server(unique_name("unreg")) as server:
            with self.assertRaises(BlockingIOError) as cm:
                server.read(10)
            err = self.assertLibraryError(cm, _errors.EAGAIN)
            self.assertIsInstance(err, npipe.WouldBlockError)
            self.assertIn("not registered", err.message)

    def test_io_on_registered_idle_server_is_not_connected(self) -> None:
        with npipe.Poll() as poll, npipe.Server(unique_name("idle")) as server:
            poll.register(server, 1)
            with self.assertRaises(ConnectionError) as cm:
                server.read(10)
            self.assertIsInstance(cm.exception, npipe.NotConnectedError)
            self.assertLibraryError(cm, _errors.ENOTCONN)
            with self.assertRaises(npipe.NotConnectedError):
                server.write(b"x")

    def test_write_after_peer_left_is_broken_pipe(self) -> None:
        with npipe.Poll() as poll:
            server, client = connected_pair(poll)
            with server:
                client.close()
                pump_until(poll, lambda evs: any(e.token == 1 and e.write_closed for e in evs))
                with self.assertRaises(BrokenPipeError) as cm:
                    server.write(b"after")
                self.assertIsInstance(cm.exception, npipe.PipeBrokenError)
                self.assertLibraryError(cm, _errors.EPIPE)

    def test_wrong_direction_is_permission_error(self) -> None:
        name = unique_name("dir")
        with npipe.Poll() as poll, npipe.Server(name) as server:
            poll.register(server, 1)
            server.connect(blocking=False)
            with npipe.Client(name, inbound_only=True, timeout=5) as client:
                poll.register(client, 2)
                with self.assertRaises(PermissionError) as cm:
                    client.write(b"x")
                self.assertIsInstance(cm.exception, npipe.PipeAccessError)
                self.assertLibraryError(cm, _errors.EACCES)

    def test_registration_errors(self) -> None:
        with npipe.Poll() as p1, npipe.Poll() as p2, npipe.Server(unique_name("reg")) as server:
            with self.assertRaises(npipe.PipeNotFoundError) as cm:
                p1.modify(server, 1)
            self.assertLibraryError(cm, _errors.ENOENT)
            with self.assertRaises(npipe.PipeNotFoundError):
                p1.unregister(server)
            p1.register(server, 1)
            with self.assertRaises(FileExistsError) as cm:
                p1.register(server, 1)  # twice
            self.assertLibraryError(cm, _errors.EEXIST)
            with self.assertRaises(npipe.PipeExistsError) as cm:
                p2.register(server, 1)  # another poll
            self.assertLibraryError(cm, _errors.EEXIST)
            p1.unregister(server)
            with self.assertRaises(npipe.PipeExistsError):
                p2.register(server, 1)  # still bound for life to p1
            p1.register(server, 3)  # but p1 takes it back

    def test_bad_interest_bits_and_tokens(self) -> None:
        with npipe.Poll() as poll, npipe.Server(unique_name("bits")) as server:
            with self.assertRaises(npipe.InvalidArgumentError) as cm:
                poll.register(server, 1, 0x8000)
            self.assertLibraryError(cm, _errors.EINVAL)
            with self.assertRaises(npipe.InvalidArgumentError):
                poll.register(server, -1)  # checked by the binding: ctypes would wrap it around
            with self.assertRaises(npipe.InvalidArgumentError):
                poll.wake(2**64)

    def test_closed_poll_cancels_its_pipes(self) -> None:
        poll = npipe.Poll()
        server, client = connected_pair(poll)
        with server, client:
            poll.close()
            with self.assertRaises(npipe.CanceledError) as cm:
                client.write(b"x")
            self.assertLibraryError(cm, _errors.ECANCELED)
            with self.assertRaises(npipe.CanceledError):
                server.read()
            server.info()  # still allowed

    def test_stale_handle_is_bad_handle(self) -> None:
        server = npipe.Server(unique_name("stale"))
        lib = _native.library()
        self.assertEqual(lib.npipe_close(server.handle), 0)  # closed behind the object's back
        with self.assertRaises(npipe.BadHandleError) as cm:
            server.info()
        self.assertLibraryError(cm, _errors.EBADF)
        server.close()  # the second npipe_close fails quietly

    def test_handles_are_64_bit(self) -> None:
        with npipe.Poll() as poll, npipe.Server(unique_name("h64")) as server:
            self.assertGreaterEqual(poll.handle, 2**32)
            self.assertGreaterEqual(server.handle, 2**32)
            lib = _native.library()
            self.assertEqual(lib.npipe_get_info(server.handle & 0xFFFFFFFF, None), _errors.EBADF)

    def test_second_concurrent_wait_is_busy(self) -> None:
        lib = _native.library()
        with npipe.Poll() as poll:
            started = threading.Event()
            result: list = []

            def waiter() -> None:
                events = (_native.EventStruct * 4)()
                started.set()
                n = lib.npipe_poll_wait(poll.handle, events, 4, 5000)
                result.extend((events[i].token, events[i].events) for i in range(max(n, 0)))

            t = threading.Thread(target=waiter, daemon=True)
            t.start()
            started.wait(5)
            time.sleep(0.2)  # let it enter npipe_poll_wait
            with self.assertRaises(npipe.PipeBusyError) as cm:
                events = (_native.EventStruct * 4)()
                _native.check(lib.npipe_poll_wait(poll.handle, events, 4, 1000))
            self.assertLibraryError(cm, _errors.EBUSY)
            poll.wake(9)
            t.join(5)
            self.assertFalse(t.is_alive())
            self.assertEqual(result, [(9, npipe.WAKE)])

    def test_second_concurrent_poll_wait_is_busy_in_python_too(self) -> None:
        with npipe.Poll() as poll:
            t = threading.Thread(target=poll.wait, args=(5,), daemon=True)
            t.start()
            time.sleep(0.2)
            with self.assertRaises(npipe.PipeBusyError):
                poll.wait(1)
            poll.wake(1)
            t.join(5)
            self.assertFalse(t.is_alive())

    def test_wake_set_limit_is_busy(self) -> None:
        with npipe.Poll() as poll:
            for token in range(64):  # at least 64 distinct tokens fit
                poll.wake(token)
            try:
                for token in range(64, 10_000):
                    poll.wake(token)
            except npipe.PipeBusyError as e:
                self.assertEqual(e.code, _errors.EBUSY)
                self.assertTrue(e.message and e.message != "no error")
            self.assertGreaterEqual(len(poll.wait(0)), 64 if poll._capacity >= 64 else 1)

    def test_open_timeout_over_several_slices(self) -> None:
        start = time.monotonic()
        with self.assertRaises(npipe.PipeTimeoutError) as cm:
            npipe.open(unique_name("slices"), timeout=0.7)
        self.assertGreaterEqual(time.monotonic() - start, 0.65)
        self.assertLess(time.monotonic() - start, 5)
        self.assertTrue(cm.exception.message)

    def test_open_waits_for_a_server_that_comes_later(self) -> None:
        name = unique_name("later")
        servers = []
        timer = threading.Timer(0.6, lambda: servers.append(npipe.Server(name)))
        timer.start()
        try:
            with npipe.open(name, timeout=DEADLINE):
                pass
        finally:
            timer.join(5)
            for s in servers:
                s.close()

    def test_message_too_large(self) -> None:
        with npipe.Poll() as poll:
            server, client = connected_pair(poll, message=True)
            with server, client:
                with self.assertRaises(npipe.MessageTooLargeError) as cm:
                    client.write(bytearray(16 * 1024 * 1024 + 1))
                self.assertLibraryError(cm, _errors.EMSGSIZE)

    def test_message_is_captured_when_the_call_fails(self) -> None:
        with self.assertRaises(npipe.PipeNotFoundError) as first:
            npipe.open(unique_name("tls"))
        message = first.exception.message
        with self.assertRaises(npipe.InvalidArgumentError) as second:
            npipe.Server("")  # a later failure on this thread replaces the library's detail...
        self.assertNotEqual(second.exception.message, message)
        self.assertEqual(first.exception.message, message)  # ...but not the first exception's copy
        # and a failure on another thread leaves this thread's detail alone
        t = threading.Thread(target=lambda: self.assertRaises(npipe.NpipeError, npipe.open, unique_name("x")))
        t.start()
        t.join(5)
        self.assertEqual(_native.library().npipe_last_error_message().decode(), second.exception.message)

if __name__ == "__main__":
    unittest.main()
