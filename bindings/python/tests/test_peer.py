"""Pipe.peer (who is on the other end) and Pipe.drain (the peer has read everything), on real pipes."""
from __future__ import annotations

import os
import unittest

import npipe
from support import DEADLINE, connected_pair, unique_name


class PeerTest(unittest.TestCase):
    def test_both_ends_name_this_process_and_its_user(self) -> None:
        name = unique_name("peer")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client:
            server.connect(timeout=DEADLINE)
            client.sendall(b"x", timeout=DEADLINE)  # a Windows server knows its client only after this
            self.assertEqual(server.recv(1, timeout=DEADLINE), b"x")
            me = npipe.Peer(pid=os.getpid(), uid=os.geteuid(), gid=os.getegid(), sid=None, same_user=True)
            self.assertEqual(server.peer, me)
            self.assertEqual(client.peer, me)

    def test_a_server_without_a_client_has_no_peer(self) -> None:
        with npipe.Server(unique_name("nopeer")) as server:
            with self.assertRaises(npipe.NotConnectedError) as cm:
                server.peer
            self.assertIn("not connected", cm.exception.message)
        with self.assertRaises(ValueError):  # closed, like a file
            server.peer


class DrainTest(unittest.TestCase):
    def test_drained_once_the_client_has_read_not_when_flushed(self) -> None:
        name = unique_name("drain")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE) as client:
            server.connect(timeout=DEADLINE)
            self.assertTrue(server.drain(timeout=DEADLINE))  # nothing written yet
            server.sendall(b"response", timeout=DEADLINE)  # flushed: the OS has it
            self.assertFalse(server.drain(blocking=False))  # but the client has not read it
            self.assertEqual(client.recv(8, timeout=DEADLINE), b"response")
            self.assertTrue(server.drain(timeout=DEADLINE))
            server.disconnect()  # nothing left to lose
            self.assertEqual(client.recv(timeout=DEADLINE), b"")

    def test_timeout_while_the_client_does_not_read(self) -> None:
        name = unique_name("drainto")
        with npipe.Server(name) as server, npipe.open(name, timeout=DEADLINE):
            server.connect(timeout=DEADLINE)
            server.sendall(b"unread", timeout=DEADLINE)
            with self.assertRaises(npipe.PipeTimeoutError):
                server.drain(timeout=0.2)

    def test_a_client_that_leaves_unread_is_a_broken_pipe(self) -> None:
        name = unique_name("drainbroken")
        with npipe.Server(name) as server:
            client = npipe.open(name, timeout=DEADLINE)
            server.connect(timeout=DEADLINE)
            server.sendall(b"never read", timeout=DEADLINE)
            client.close()
            with self.assertRaises(npipe.PipeBrokenError):
                server.drain(timeout=DEADLINE)

    def test_on_a_poll_drain_does_not_block(self) -> None:
        with npipe.Poll() as poll:
            server, client = connected_pair(poll)
            with server, client:
                self.assertEqual(server.write(b"abc"), 3)
                self.assertFalse(server.drain(blocking=False))
                got = b""
                while len(got) < 3:
                    try:
                        got += client.read(3 - len(got))
                    except BlockingIOError:
                        self.assertTrue(poll.wait(DEADLINE), "no event within the deadline")
                self.assertEqual(got, b"abc")
                while not server.drain(blocking=False):  # NPIPE_WRITABLE follows when drained
                    self.assertTrue(poll.wait(DEADLINE), "no event within the deadline")
                self.assertTrue(server.drain(timeout=DEADLINE))  # drained already: no wait needed
                self.assertEqual(server.write(b"more"), 4)
                with self.assertRaises(npipe.PipeExistsError):
                    server.drain(timeout=DEADLINE)  # waiting needs the private poll


if __name__ == "__main__":
    unittest.main()
