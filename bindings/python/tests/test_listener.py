"""npipe.Listener on real pipes: blocking accept with the caller's timeout, a burst of clients from
threads all accepted with their own data, iteration, close ending a blocked accept, the Poll way
(accepted pipes on the listener's poll only) and the options struct."""
from __future__ import annotations

import ctypes
import os
import threading
import unittest
from typing import Any, Dict, List

import npipe
from npipe import _native
from support import DEADLINE, pump_until, read_available, run_in_thread, unique_name


def join(test: unittest.TestCase, thread: threading.Thread, raised: List[BaseException]) -> None:
    thread.join(DEADLINE)
    test.assertFalse(thread.is_alive(), "the thread did not finish")
    if raised:
        raise raised[0]


class WaitSignal:
    """Stands in for the listener's library and sets ``waiting`` when npipe_wait is called, so a
    test knows the accepting thread reached its wait without sleeping."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib
        self.waiting = threading.Event()

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._lib, name)
        if name != "npipe_wait":
            return fn

        def wait(*args: Any) -> Any:
            self.waiting.set()
            return fn(*args)

        return wait


class BlockingAcceptTest(unittest.TestCase):
    def test_timeout_names_the_callers_timeout_then_a_client_is_accepted(self) -> None:
        name = unique_name("lto")
        with npipe.Listener(name) as listener:
            with self.assertRaises(TimeoutError) as caught:
                listener.accept(timeout=0.3)
            self.assertIsInstance(caught.exception, npipe.PipeTimeoutError)
            self.assertIn("0.3 s", str(caught.exception))
            with self.assertRaises(npipe.PipeTimeoutError):
                listener.accept(timeout=0)  # only looks
            with npipe.open(name, timeout=DEADLINE) as client:
                client.sendall(b"ping", timeout=DEADLINE)
                with listener.accept(timeout=DEADLINE) as pipe:
                    self.assertIsInstance(pipe, npipe.Server)
                    self.assertEqual(pipe.name, name)
                    self.assertTrue(pipe.info().connected)
                    self.assertEqual(pipe.recv(timeout=DEADLINE), b"ping")
                    pipe.sendall(b"pong", timeout=DEADLINE)
                    self.assertEqual(client.recv(timeout=DEADLINE), b"pong")

    def test_32_clients_from_threads_all_accepted_each_with_its_own_data(self) -> None:
        name = unique_name("lburst")
        count = 32
        results: Dict[int, bytes] = {}
        go = threading.Barrier(count + 1)

        def client(i: int) -> None:
            go.wait(DEADLINE)
            mine = f"client {i:03d} ".encode() * (i + 1)
            with npipe.open(name, timeout=DEADLINE) as c:
                c.sendall(len(mine).to_bytes(4, "little") + mine, timeout=DEADLINE)
                back = b""
                while len(back) < len(mine):
                    chunk = c.recv(timeout=DEADLINE)
                    if not chunk:
                        break
                    back += chunk
                results[i] = back

        with npipe.Listener(name) as listener:
            threads = [run_in_thread(lambda i=i: client(i)) for i in range(count)]
            go.wait(DEADLINE)  # every client opens at once
            for _ in range(count):
                with listener.accept(timeout=DEADLINE) as pipe:
                    data = b""
                    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "little"):
                        chunk = pipe.recv(timeout=DEADLINE)
                        self.assertNotEqual(chunk, b"", "a client's data was cut short")
                        data += chunk
                    pipe.sendall(data[4:], timeout=DEADLINE)  # echo its own data back
            for thread, raised in threads:
                join(self, thread, raised)
        self.assertEqual(sorted(results), list(range(count)))
        for i, back in results.items():
            self.assertEqual(back, f"client {i:03d} ".encode() * (i + 1))

    def test_iteration_accepts_until_close_from_another_thread(self) -> None:
        name = unique_name("liter")
        listener = npipe.Listener(name)
        got: List[npipe.PipeInfo] = []
        three = threading.Event()

        def serve() -> None:
            for pipe in listener:
                with pipe:
                    got.append(pipe.info())
                if len(got) == 3:
                    three.set()

        thread, raised = run_in_thread(serve)
        clients = [npipe.open(name, timeout=DEADLINE) for _ in range(3)]
        try:
            self.assertTrue(three.wait(DEADLINE))
            listener.close()  # ends the loop, which is blocked in its next accept
            join(self, thread, raised)
            self.assertEqual(len(got), 3)
            for info in got:
                self.assertTrue(info.connected and info.is_server)
                self.assertEqual(info.peer_pid, os.getpid())
        finally:
            for client in clients:
                client.close()

    def test_close_from_another_thread_ends_a_blocked_accept(self) -> None:
        listener = npipe.Listener(unique_name("lclose"))
        signal = WaitSignal(listener._lib)
        listener._lib = signal  # type: ignore[assignment]
        thread, raised = run_in_thread(lambda: listener.accept())  # no timeout: only close can end it
        self.assertTrue(signal.waiting.wait(DEADLINE))
        listener.close()
        thread.join(DEADLINE)
        self.assertFalse(thread.is_alive(), "close did not end the blocked accept")
        self.assertEqual(len(raised), 1)
        self.assertIsInstance(raised[0], ValueError)
        self.assertIn("closed Listener", str(raised[0]))

    def test_closing_the_listener_ends_clients_not_accepted_yet(self) -> None:
        name = unique_name("lpend")
        listener = npipe.Listener(name)
        client = npipe.open(name, timeout=DEADLINE)
        with client:
            self.assertTrue(_native.library().npipe_wait(listener.handle, npipe.READABLE, int(DEADLINE * 1000))
                            & npipe.READABLE)
            listener.close()
            self.assertEqual(client.recv(timeout=DEADLINE), b"")  # EOF, not a hang


class PollListenerTest(unittest.TestCase):
    def test_readable_accept_until_would_block_and_pipes_on_the_same_poll_only(self) -> None:
        name = unique_name("lpoll")
        with npipe.Poll() as poll, npipe.Poll() as other, npipe.Listener(name) as listener:
            poll.register(listener, 7, npipe.READABLE)
            self.assertIs(listener.poll, poll)
            with self.assertRaises(npipe.WouldBlockError):
                listener.accept(blocking=False)
            with self.assertRaises(npipe.PipeExistsError):
                listener.accept(timeout=0)  # blocking accept on a listener a Poll drives
            client = npipe.open(name, timeout=DEADLINE)
            with client:
                pump_until(poll, lambda seen: any(e.token == 7 and e.readable for e in seen))
                with listener.accept(blocking=False) as pipe:
                    with self.assertRaises(npipe.WouldBlockError):
                        listener.accept(blocking=False)
                    with self.assertRaises(npipe.PipeExistsError):
                        other.register(pipe, 1)
                    poll.register(pipe, 1, npipe.READABLE)
                    client.sendall(b"via the poll", timeout=DEADLINE)
                    pump_until(poll, lambda seen: any(e.token == 1 and e.readable for e in seen))
                    self.assertEqual(pipe.read(), b"via the poll")

    def test_info_counts_the_clients_waiting_to_be_accepted(self) -> None:
        self.assertEqual(ctypes.sizeof(_native.InfoStruct), 80)
        name = unique_name("linfo")
        with npipe.Poll() as poll, npipe.Listener(name) as listener:
            poll.register(listener, 7, npipe.READABLE | npipe.LEVEL)
            info = listener.info()
            self.assertTrue(info.is_listener)
            self.assertFalse(info.is_server)
            self.assertEqual(info.pending_accepts, 0)
            clients = [npipe.open(name, timeout=DEADLINE) for _ in range(3)]
            try:
                pump_until(poll, lambda _: listener.info().pending_accepts == 3)
                with listener.accept(blocking=False) as pipe:
                    self.assertEqual(listener.info().pending_accepts, 2)
                    pipe_info = pipe.info()
                    self.assertFalse(pipe_info.is_listener)
                    self.assertTrue(pipe_info.is_server and pipe_info.connected)
                    self.assertEqual((pipe_info.waiting_instances, pipe_info.pending_accepts), (0, 0))
            finally:
                for client in clients:
                    client.close()

    def test_32_clients_from_threads_accepted_on_the_poll_each_with_its_own_data(self) -> None:
        name = unique_name("lpburst")
        count = 32
        go = threading.Barrier(count + 1)
        expected = {i: f"client {i:03d} ".encode() * (i + 1) for i in range(count)}

        def client(i: int) -> None:
            go.wait(DEADLINE)
            with npipe.open(name, timeout=DEADLINE) as c:
                c.sendall(expected[i], timeout=DEADLINE)  # then EOF when it closes

        received: Dict[int, bytearray] = {}
        ended: List[int] = []
        with npipe.Poll() as poll, npipe.Listener(name) as listener:
            poll.register(listener, 0, npipe.READABLE)
            threads = [run_in_thread(lambda i=i: client(i)) for i in range(count)]
            go.wait(DEADLINE)  # every client opens at once
            pipes: Dict[int, npipe.Server] = {}

            def progress(events: List[npipe.Event]) -> bool:
                for event in events[progress.seen:]:  # type: ignore[attr-defined]
                    if event.token == 0:
                        while True:  # accept until WouldBlockError: the edge rule
                            try:
                                pipe = listener.accept(blocking=False)
                            except npipe.WouldBlockError:
                                break
                            token = len(pipes) + 1
                            pipes[token] = pipe
                            received[token] = bytearray()
                            poll.register(pipe, token, npipe.READABLE)
                    elif event.token not in ended:
                        data, eof = read_available(pipes[event.token])
                        received[event.token] += data
                        if eof:
                            ended.append(event.token)
                progress.seen = len(events)  # type: ignore[attr-defined]
                return len(ended) == count

            progress.seen = 0  # type: ignore[attr-defined]
            pump_until(poll, progress)
            for pipe in pipes.values():
                pipe.close()
            for thread, raised in threads:
                join(self, thread, raised)
        self.assertEqual(sorted(bytes(b) for b in received.values()), sorted(expected.values()))


class ListenerOptionsTest(unittest.TestCase):
    def test_struct_is_the_headers_40_bytes_and_options_are_checked(self) -> None:
        self.assertEqual(ctypes.sizeof(_native.ListenerOptions), 40)
        name = unique_name("lopt")
        with self.assertRaises(npipe.InvalidArgumentError) as caught:
            npipe.Listener(name, spare_instances=65)
        self.assertIn("spare_instances", str(caught.exception))
        with self.assertRaises(npipe.InvalidArgumentError):
            npipe.Listener(name, max_pending=4097)
        with self.assertRaises(npipe.InvalidArgumentError):
            npipe.Listener(name, max_pending=-1)
        with npipe.Listener(name, spare_instances=64, max_pending=4096, message=True) as listener:
            with self.assertRaises(npipe.PipeExistsError):
                npipe.Listener(name, first_instance=True)
            with npipe.open(name, timeout=DEADLINE, message=True) as client:
                client.send_msg(b"one message", timeout=DEADLINE)
                with listener.accept(timeout=DEADLINE) as pipe:
                    self.assertTrue(pipe.message_mode)
                    self.assertEqual(pipe.recv_msg(timeout=DEADLINE), b"one message")
        self.assertTrue(listener.closed)
        with self.assertRaises(ValueError):
            listener.accept(timeout=0)


if __name__ == "__main__":
    unittest.main()
