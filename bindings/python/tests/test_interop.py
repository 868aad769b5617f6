"""Interoperation with peers written with Python's own socket module (AF_UNIX) on the same path."""
from __future__ import annotations

import hashlib
import os
import socket
import stat
import sys
import tempfile
import threading
import unittest

import npipe
from support import DEADLINE, unique_name


@unittest.skipUnless(sys.platform.startswith("linux"), "Linux maps pipe names to AF_UNIX sockets")
class SocketInteropTest(unittest.TestCase):
    def test_resolve_name(self) -> None:
        tmp = os.environ.get("TMPDIR") or "/tmp"
        expected = os.path.join(tmp, "CoreFxPipe_foo")
        self.assertEqual(os.path.normpath(npipe.resolve_name("foo")), os.path.normpath(expected))
        self.assertEqual(npipe.resolve_name("\\\\.\\pipe\\foo"), npipe.resolve_name("foo"))
        self.assertEqual(npipe.resolve_name("/run/some/app.sock"), "/run/some/app.sock")

    def test_npipe_client_to_socket_server(self) -> None:
        name = unique_name("sock-srv")
        path = npipe.resolve_name(name)
        payload = os.urandom(3 * 1024 * 1024)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            try:
                listener.listen(1)
                listener.settimeout(DEADLINE)
                result = {}

                def serve() -> None:
                    conn, _ = listener.accept()
                    with conn:
                        conn.settimeout(DEADLINE)
                        digest, n = hashlib.sha256(), 0
                        while n < len(payload):
                            chunk = conn.recv(1 << 16)
                            if not chunk:
                                break
                            digest.update(chunk)
                            n += len(chunk)
                        conn.sendall(digest.digest())
                        result["eof"] = conn.recv(1)  # b"" once the npipe client closed

                t = threading.Thread(target=serve, daemon=True)
                t.start()
                with npipe.open(name, timeout=DEADLINE) as client:
                    client.sendall(payload, timeout=30)
                    reply = b""
                    while len(reply) < 32:
                        chunk = client.recv(32 - len(reply), timeout=DEADLINE)
                        self.assertTrue(chunk, "EOF before the digest")
                        reply += chunk
                    self.assertEqual(reply, hashlib.sha256(payload).digest())
                t.join(DEADLINE)
                self.assertFalse(t.is_alive())
                self.assertEqual(result.get("eof"), b"")
            finally:
                os.unlink(path)

    def test_socket_client_to_npipe_server(self) -> None:
        name = unique_name("sock-cli")
        with npipe.Server(name) as server:
            path = npipe.resolve_name(name)
            self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode))
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(DEADLINE)
                sock.connect(path)
                self.assertTrue(server.connect(timeout=DEADLINE))
                self.assertEqual(server.info().peer_pid, os.getpid())
                sock.sendall(b"from socket")
                self.assertEqual(server.recv(timeout=DEADLINE), b"from socket")
                server.sendall(b"from npipe", timeout=DEADLINE)
                self.assertEqual(sock.recv(100), b"from npipe")
                sock.shutdown(socket.SHUT_WR)
                self.assertEqual(server.recv(timeout=DEADLINE), b"")  # EOF from the socket peer
        self.assertFalse(os.path.exists(path))  # the last close removed the socket file

    def test_adopt_a_socket(self) -> None:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with b:
            b.settimeout(DEADLINE)
            pipe = npipe.from_raw_handle(a)
            self.assertEqual(a.fileno(), -1)  # detached: the pipe owns the descriptor now
            with pipe:
                fd = pipe.raw_handle()
                self.assertTrue(stat.S_ISSOCK(os.fstat(fd).st_mode))
                pipe.sendall(b"adopted", timeout=DEADLINE)
                self.assertEqual(b.recv(100), b"adopted")
                b.sendall(b"back")
                self.assertEqual(pipe.recv(timeout=DEADLINE), b"back")
            with self.assertRaises(OSError):
                os.fstat(fd)  # closed with the pipe

    def test_adopt_rejects_bad_flags_and_keeps_the_handle(self) -> None:
        a, b = socket.socketpair()
        with a, b:
            lib = npipe._native.library()
            out = npipe._native.npipe_t()
            self.assertEqual(lib.npipe_from_raw_handle(a.fileno(), 0x4, out), npipe._errors.EINVAL)
            os.fstat(a.fileno())  # still open: the caller kept it
            with self.assertRaises(TypeError):
                npipe.from_raw_handle("not a handle")

    def test_tmpdir_decides_the_path(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            old = os.environ.get("TMPDIR")
            os.environ["TMPDIR"] = tmp
            try:
                path = npipe.resolve_name("moved")
            finally:
                if old is None:
                    del os.environ["TMPDIR"]
                else:
                    os.environ["TMPDIR"] = old
            self.assertEqual(path, os.path.join(tmp, "CoreFxPipe_moved"))


if __name__ == "__main__":
    unittest.main()
