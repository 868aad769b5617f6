"""Pipe.makefile and PipeIO: the io stack (BufferedReader, readline, iteration, text) over real pipes."""
from __future__ import annotations

import io
import unittest

import npipe
from support import DEADLINE, blocking_server, unique_name


class MakefileTest(unittest.TestCase):
    def test_lines_and_iteration_in_text_and_binary(self) -> None:
        name = unique_name("lines")

        def serve(server: npipe.Server) -> None:
            with server.makefile("w", encoding="utf-8", timeout=DEADLINE) as f:
                f.write("héllo\nsecond line\n")
                f.write("x" * 100000 + "\nlast without newline")
            server.drain(timeout=DEADLINE)

        thread, errors = blocking_server(name, serve)
        with npipe.open(name, timeout=DEADLINE) as client:
            with client.makefile("rb", timeout=DEADLINE) as f:
                self.assertIsInstance(f, io.BufferedReader)
                self.assertEqual(f.readline(), "héllo\n".encode())
                self.assertEqual(f.read(6), b"second")  # exactly n bytes, across arrivals
                lines = list(f)
            self.assertEqual(lines, [b" line\n", b"x" * 100000 + b"\n", b"last without newline"])
            self.assertFalse(client.closed)  # closing the file leaves the pipe open
            self.assertEqual(client.recv(timeout=DEADLINE), b"")
        thread.join(DEADLINE)
        self.assertEqual(errors, {})

    def test_text_reader_and_read_to_the_end(self) -> None:
        name = unique_name("text")
        payload = "z" * 300000

        def serve(server: npipe.Server) -> None:
            server.sendall(b"one\r\ntwo\n", timeout=DEADLINE)
            server.sendall(payload.encode(), timeout=DEADLINE)
            server.drain(timeout=DEADLINE)

        thread, errors = blocking_server(name, serve)
        with npipe.open(name, timeout=DEADLINE) as client:
            raw = client.makefile("rb", buffering=0, timeout=DEADLINE)
            self.assertIsInstance(raw, npipe.PipeIO)
            buf = bytearray(2)
            self.assertEqual(raw.readinto(buf), 2)  # raw: blocks for some bytes, never None
            self.assertEqual(bytes(buf), b"on")
            text = client.makefile("r", encoding="ascii", newline=None, timeout=DEADLINE)
            self.assertEqual(text.readline(), "e\n")  # universal newlines: \r\n reads as \n
            self.assertEqual(text.readline(), "two\n")
            self.assertEqual(text.read(), payload)  # until the end of the connection
            self.assertEqual(text.read(), "")
        thread.join(DEADLINE)
        self.assertEqual(errors, {})

    def test_read_write_pair_echo(self) -> None:
        name = unique_name("rw")

        def serve(server: npipe.Server) -> None:
            with server.makefile("rwb", timeout=DEADLINE) as f:
                for line in f:
                    f.write(line.upper())
                    f.flush()

        thread, errors = blocking_server(name, serve)
        with npipe.open(name, timeout=DEADLINE) as client:
            with client.makefile("rw", encoding="utf-8", timeout=DEADLINE) as f:
                for word in ("alpha", "beta"):
                    f.write(word + "\n")
                    f.flush()
                    self.assertEqual(f.readline(), word.upper() + "\n")
        thread.join(DEADLINE)
        self.assertEqual(errors, {})

    def test_timeouts_name_the_file_call_and_modes_are_checked(self) -> None:
        name = unique_name("ftime")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client:
            server.connect(timeout=DEADLINE)
            f = client.makefile("rb", timeout=0.3)
            with self.assertRaises(npipe.PipeTimeoutError) as cm:
                f.read(1)
            self.assertIn("read did not complete within 0.3 s", cm.exception.message)
            with self.assertRaises(io.UnsupportedOperation):
                f.write(b"x")
            f.close()
            with self.assertRaises(ValueError):
                f.read(1)  # a closed file
            with self.assertRaises(ValueError):
                client.makefile("r", buffering=0)
            with self.assertRaises(ValueError):
                client.makefile("rx")
            w = client.makefile("wb", buffering=0, timeout=DEADLINE)
            self.assertEqual(w.write(bytearray(b"ok")), 2)
            with self.assertRaises(io.UnsupportedOperation):
                w.read(1)
            w.close()
            self.assertEqual(server.recv(timeout=DEADLINE), b"ok")

    def test_write_timeout_when_the_peer_never_reads(self) -> None:
        name = unique_name("wtime")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client:
            server.connect(timeout=DEADLINE)
            f = client.makefile("wb", buffering=0, timeout=0.3)
            with self.assertRaises(npipe.PipeTimeoutError) as cm:
                f.write(b"x" * (64 << 20))
            self.assertIn("write did not complete within 0.3 s", cm.exception.message)
            with self.assertRaises(npipe.PipeTimeoutError) as cm:
                f.close()  # close flushes, for at most the timeout: the peer reads nothing
            self.assertIn("flush did not complete within 0.3 s", cm.exception.message)
            self.assertTrue(f.closed)

if __name__ == "__main__":
    unittest.main()
