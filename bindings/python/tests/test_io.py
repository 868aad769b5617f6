"""Data transfer: echo, bulk with checksums, many clients on one poll, message mode, readiness."""
from __future__ import annotations

import array
import hashlib
import os
import threading
import time
import unittest
from typing import Dict, List

import npipe
from support import DEADLINE, blocking_server, connected_pair, pump_until, read_available, unique_name


class EchoTest(unittest.TestCase):
    def test_echo_with_blocking_helpers(self) -> None:
        name = unique_name("echo")
        thread, errors = blocking_server(name, lambda s: s.sendall(s.recv(timeout=DEADLINE), timeout=DEADLINE))
        with npipe.open(name, timeout=DEADLINE) as client:
            client.sendall(b"hello, pipe", timeout=DEADLINE)
            self.assertEqual(client.recv(timeout=DEADLINE), b"hello, pipe")
            self.assertEqual(client.recv(timeout=DEADLINE), b"")  # the server closed: EOF
        thread.join(DEADLINE)
        self.assertEqual(errors, {})

    def test_echo_on_one_poll(self) -> None:
        with npipe.Poll() as poll:
            server, client = connected_pair(poll)
            with server, client:
                self.assertEqual(client.write(b"ping"), 4)
                got = bytearray()

                def progress(events: List[npipe.Event]) -> bool:
                    for e in events:
                        if e.token == 1 and e.readable:
                            data, _ = read_available(server)
                            if data:
                                server.write(data)
                        if e.token == 2 and e.readable:
                            got.extend(read_available(client)[0])
                    events.clear()
                    return bytes(got) == b"ping"

                pump_until(poll, progress)
                info = client.info()
                self.assertFalse(info.is_server)
                self.assertTrue(info.connected)
                self.assertEqual((info.bytes_written, info.bytes_read), (4, 4))
                self.assertTrue(server.info().is_server)

    def test_buffer_types_zero_copy(self) -> None:
        with npipe.Poll() as poll:
            server, client = connected_pair(poll)
            with server, client:
                payload = bytearray(range(256)) * 4
                self.assertEqual(client.write(memoryview(payload)[10:20]), 10)  # writable view, no copy
                self.assertEqual(client.write(bytes(payload[20:30])), 10)
                self.assertEqual(client.write(memoryview(bytes(payload))[30:40]), 10)  # read-only view
                self.assertEqual(client.write(array.array("H", [0x0201, 0x0403])), 4)  # non-byte items
                self.assertEqual(client.writev([b"ab", bytearray(b"cd"), memoryview(b"ef")]), 6)
                expected = bytes(payload[10:40]) + b"\x01\x02\x03\x04abcdef"
                buf = bytearray(len(expected))
                view = memoryview(buf)
                got = 0
                deadline = time.monotonic() + DEADLINE
                while got < len(expected) and time.monotonic() < deadline:
                    try:
                        got += server.readinto(view[got:])
                    except BlockingIOError:
                        poll.wait(0.2)
                self.assertEqual(bytes(buf), expected)
                view.release()
                buf.extend(b"resizable again")  # readinto released its ctypes view of buf
                client.write(b"0123456789")
                a, b = bytearray(3), bytearray(20)
                pump_until(poll, lambda evs: server.info().read_available >= 10)
                self.assertEqual(server.readv([a, b]), 10)
                self.assertEqual((bytes(a), bytes(b[:7])), (b"012", b"3456789"))

    def test_sticky_eof_and_closed_flags(self) -> None:
        with npipe.Poll() as poll:
            server, client = connected_pair(poll)
            with server:
                client.write(b"last words")
                pump_until(poll, lambda evs: any(e.token == 1 and e.readable for e in evs))
                client.close()
                events = pump_until(poll, lambda evs: any(e.token == 1 and e.read_closed for e in evs))
                data = b""
                deadline = time.monotonic() + DEADLINE
                while time.monotonic() < deadline:
                    try:
                        chunk = server.read()
                    except BlockingIOError:
                        poll.wait(0.1)
                        continue
                    if not chunk:
                        break
                    data += chunk
                self.assertEqual(data, b"last words")
                for _ in range(3):
                    self.assertEqual(server.read(), b"")  # sticky
                self.assertEqual(sum(1 for e in events if e.token == 1 and e.read_closed), 1)

    def test_disconnect_and_reconnect_without_stale_state(self) -> None:
        name = unique_name("reuse")
        with npipe.Poll() as poll:
            server, first = connected_pair(poll, name)
            with server:
                first.write(b"stale")
                pump_until(poll, lambda evs: server.info().read_available >= 5)
                server.disconnect()
                first.close()
                self.assertFalse(server.connect(blocking=False))
                with npipe.open(name, timeout=DEADLINE) as second:
                    poll.register(second, 3)
                    pump_until(poll, lambda _: server.connect(blocking=False))
                    self.assertIsNone(server.take_error())
                    second.write(b"fresh")
                    got = bytearray()
                    pump_until(poll, lambda _: got.extend(read_available(server)[0]) or len(got) >= 5)
                    self.assertEqual(bytes(got), b"fresh")


class BulkTest(unittest.TestCase):
    SIZE = 8 * 1024 * 1024

    def test_bulk_both_ways_on_one_poll(self) -> None:
        up = os.urandom(self.SIZE)
        down = os.urandom(self.SIZE // 2)
        with npipe.Poll() as poll:
            server, client = connected_pair(poll)
            with server, client:
                sent = {1: 0, 2: 0}
                data = {1: down, 2: up}
                pipes = {1: server, 2: client}
                digests = {1: hashlib.sha256(), 2: hashlib.sha256()}
                received = {1: 0, 2: 0}
                buf = bytearray(256 * 1024)
                view = memoryview(buf)

                def step(events: List[npipe.Event]) -> bool:
                    for tok in (1, 2):
                        pipe = pipes[tok]
                        while sent[tok] < len(data[tok]):
                            try:
                                sent[tok] += pipe.write(memoryview(data[tok])[sent[tok]:sent[tok] + 1 << 20])
                            except BlockingIOError:
                                break
                        while True:
                            try:
                                n = pipe.readinto(buf)
                            except BlockingIOError:
                                break
                            if n == 0:
                                break
                            digests[tok].update(view[:n])
                            received[tok] += n
                    events.clear()
                    return received[1] == len(up) and received[2] == len(down)

                pump_until(poll, step, timeout=60)
                self.assertEqual(digests[1].hexdigest(), hashlib.sha256(up).hexdigest())
                self.assertEqual(digests[2].hexdigest(), hashlib.sha256(down).hexdigest())
                pump_until(poll, lambda _: client.flush() and server.flush())
                self.assertEqual(client.info().bytes_written, len(up))
                self.assertEqual(server.info().bytes_read, len(up))

    def test_bulk_with_blocking_helpers_in_threads(self) -> None:
        payload = os.urandom(self.SIZE)
        name = unique_name("bulk")

        def serve(server: npipe.Server) -> None:
            header = b""
            while len(header) < 8:
                header += server.recv(8 - len(header), timeout=DEADLINE)
            left = int.from_bytes(header, "little")
            digest = hashlib.sha256()
            while left:
                chunk = server.recv(min(left, 1 << 16), timeout=DEADLINE)
                if not chunk:
                    raise EOFError(f"{left} bytes missing")
                digest.update(chunk)
                left -= len(chunk)
            server.sendall(digest.digest(), timeout=DEADLINE)

        thread, errors = blocking_server(name, serve)
        with npipe.open(name, timeout=DEADLINE) as client:
            client.sendall(len(payload).to_bytes(8, "little") + payload, timeout=60)
            reply = b""
            while len(reply) < 32:
                chunk = client.recv(32, timeout=60)
                if not chunk:
                    break
                reply += chunk
        thread.join(60)
        self.assertFalse(thread.is_alive())
        self.assertEqual(errors, {})
        self.assertEqual(reply, hashlib.sha256(payload).digest())

    def test_concurrent_recv_and_sendall_on_one_pipe(self) -> None:
        payload = os.urandom(2 * 1024 * 1024)
        name = unique_name("duplex")
        thread, errors = blocking_server(name, lambda s: [s.sendall(c, timeout=DEADLINE)
                                                          for c in iter(lambda: s.recv(1 << 16, timeout=DEADLINE), b"")])
        with npipe.open(name, timeout=DEADLINE) as client:
            got = hashlib.sha256()
            count = [0]

            def reader() -> None:
                while count[0] < len(payload):
                    chunk = client.recv(1 << 16, timeout=DEADLINE)
                    if not chunk:
                        break
                    got.update(chunk)
                    count[0] += len(chunk)

            r = threading.Thread(target=reader, daemon=True)
            r.start()
            for i in range(0, len(payload), 100_000):
                client.sendall(payload[i:i + 100_000], timeout=DEADLINE)  # while the reader waits
            r.join(60)
            self.assertFalse(r.is_alive())
            self.assertEqual(got.hexdigest(), hashlib.sha256(payload).hexdigest())
        thread.join(DEADLINE)
        self.assertEqual(errors, {})


class ManyClientsTest(unittest.TestCase):
    CLIENTS = 32

    def test_32_clients_on_one_poll(self) -> None:
        name = unique_name("many")
        payloads = {i: os.urandom(1000 + 997 * i) for i in range(self.CLIENTS)}
        with npipe.Poll() as poll:
            servers: Dict[int, npipe.Server] = {}
            for i in range(self.CLIENTS):
                s = npipe.Server(name)
                poll.register(s, 1000 + i)
                self.assertFalse(s.connect(blocking=False))
                servers[1000 + i] = s
            clients: Dict[int, npipe.Client] = {}
            for i in range(self.CLIENTS):
                c = npipe.open(name, timeout=DEADLINE)
                poll.register(c, i)
                clients[i] = c
            echoed: Dict[int, bytearray] = {i: bytearray() for i in clients}
            pending: Dict[int, bytes] = {i: payloads[i] for i in clients}
            backlog: Dict[int, bytes] = {t: b"" for t in servers}
            connected = set()

            def step(events: List[npipe.Event]) -> bool:
                for e in events:
                    if e.token >= 1000 and e.connected:
                        if servers[e.token].connect(blocking=False):
                            connected.add(e.token)
                for tok, s in servers.items():  # echo whatever arrived
                    if tok not in connected:
                        continue
                    data, _ = read_available(s)
                    backlog[tok] += data
                    while backlog[tok]:
                        try:
                            n = s.write(backlog[tok])
                        except BlockingIOError:
                            break
                        backlog[tok] = backlog[tok][n:]
                for i, c in clients.items():
                    while pending[i]:
                        try:
                            n = c.write(pending[i])
                        except BlockingIOError:
                            break
                        pending[i] = pending[i][n:]
                    echoed[i] += read_available(c)[0]
                events.clear()
                return all(len(echoed[i]) == len(payloads[i]) for i in clients)

            pump_until(poll, step, timeout=60)
            self.assertEqual(len(connected), self.CLIENTS)
            for i in clients:
                self.assertEqual(hashlib.sha256(echoed[i]).digest(), hashlib.sha256(payloads[i]).digest(), f"client {i}")
            for p in list(servers.values()) + list(clients.values()):
                p.close()


class MessageModeTest(unittest.TestCase):
    def test_boundaries_empty_and_partial(self) -> None:
        with npipe.Poll() as poll:
            server, client = connected_pair(poll, message=True)
            with server, client:
                msgs = [b"one", b"", b"three" * 100, b"4"]
                for m in msgs:
                    self.assertEqual(client.write(m), len(m))
                pump_until(poll, lambda _: server.info().read_available >= 504)
                got = []
                for _ in range(len(msgs)):
                    got.append(server.read_msg(4096))
                self.assertEqual([m.data for m in got], msgs)
                self.assertTrue(got[1].empty)
                self.assertFalse(got[1].eof)
                self.assertFalse(any(m.partial for m in got))
                # partial reads of one message never merge with the next
                client.write(b"abcdefghij")
                client.write(b"XY")
                pump_until(poll, lambda _: server.info().read_available >= 12)
                parts = [server.read_msg(4), server.read_msg(4), server.read_msg(4), server.read_msg(4)]
                self.assertEqual([(p.data, p.partial) for p in parts],
                                 [(b"abcd", True), (b"efgh", True), (b"ij", False), (b"XY", False)])

    def test_read_skips_empty_messages_and_writev_is_one_message(self) -> None:
        with npipe.Poll() as poll:
            server, client = connected_pair(poll, message=True)
            with server, client:
                client.write(b"")
                client.writev([b"a", b"bc", b"def"])
                pump_until(poll, lambda _: server.info().read_available >= 6)
                self.assertEqual(server.read(100), b"abcdef")
                self.assertTrue(server.info().message)

    def test_blocking_message_round_trip(self) -> None:
        name = unique_name("msg")
        big = os.urandom(3 * 1024 * 1024 + 17)

        def serve(s: npipe.Server) -> None:
            while True:
                try:
                    m = s.recv_msg(timeout=DEADLINE)
                except EOFError:
                    return
                s.send_msg(hashlib.sha256(m).digest() + len(m).to_bytes(8, "little"), timeout=DEADLINE)

        thread, errors = blocking_server(name, serve, message=True)
        with npipe.open(name, timeout=DEADLINE, message=True) as client:
            for m in [b"x", b"", big, b"tail"]:
                client.send_msg(m, timeout=30)
                reply = client.recv_msg(timeout=30)
                self.assertEqual(reply, hashlib.sha256(m).digest() + len(m).to_bytes(8, "little"))
        thread.join(DEADLINE)
        self.assertFalse(thread.is_alive())
        self.assertEqual(errors, {})


class ReadinessTest(unittest.TestCase):
    def test_edge_triggered_reports_once_level_repeats(self) -> None:
        with npipe.Poll() as poll:
            server, client = connected_pair(poll, interests=npipe.READABLE)
            with server, client:
                client.write(b"data")
                pump_until(poll, lambda evs: any(e.token == 1 and e.readable for e in evs))
                poll.wait(0.1)  # edge-triggered: the event is not repeated (spurious ones are allowed)
                poll.modify(server, 1, npipe.READABLE | npipe.LEVEL)
                for _ in range(3):  # level: every wait while data is there
                    self.assertIn(1, [e.token for e in poll.wait(1) if e.readable])
                self.assertEqual(server.read(), b"data")

    def test_interests_are_honoured_and_unregister_silences(self) -> None:
        with npipe.Poll() as poll:
            server, client = connected_pair(poll, interests=npipe.WRITABLE)
            with server, client:
                client.write(b"x")
                time.sleep(0.1)
                self.assertFalse(any(e.token == 1 and e.readable for e in poll.wait(0.2)))
                poll.unregister(server)
                client.write(b"y")
                self.assertFalse(any(e.token == 1 for e in poll.wait(0.2)))
                poll.register(server, 7, npipe.READABLE)
                events = pump_until(poll, lambda evs: any(e.token == 7 and e.readable for e in evs))
                self.assertTrue(events)
                self.assertIs(server.poll, poll)

    def test_wake_coalesces_and_is_thread_safe(self) -> None:
        with npipe.Poll() as poll:
            threads = [threading.Thread(target=lambda: [poll.wake(5) for _ in range(100)]) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(DEADLINE)
            events = poll.wait(1)
            self.assertEqual([(e.token, e.wake) for e in events], [(5, True)])
            self.assertEqual(poll.wait(0), [])
            poll.wake(1)
            poll.wake(2)
            self.assertEqual(sorted(e.token for e in poll.wait(1)), [1, 2])

    def test_wake_ends_a_blocked_wait(self) -> None:
        with npipe.Poll() as poll:
            threading.Timer(0.2, poll.wake, args=(42,)).start()
            start = time.monotonic()
            events = poll.wait(DEADLINE)
            self.assertLess(time.monotonic() - start, DEADLINE / 2)
            self.assertEqual(events[0].token, 42)
            self.assertTrue(events[0].wake)

    def test_capacity_limits_one_wait_nothing_is_lost(self) -> None:
        with npipe.Poll(capacity=1) as poll:
            poll.wake(1)
            poll.wake(2)
            poll.wake(3)
            tokens = []
            for _ in range(3):
                evs = poll.wait(1)
                self.assertEqual(len(evs), 1)
                tokens += [e.token for e in evs]
            self.assertEqual(sorted(tokens), [1, 2, 3])


if __name__ == "__main__":
    unittest.main()
