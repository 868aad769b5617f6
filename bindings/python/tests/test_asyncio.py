"""npipe.asyncio: StreamReader/StreamWriter over real pipes, the listener behind start_server, the
non-blocking open behind open_connection, cancellation and peers that leave. Every test runs
under asyncio.wait_for(DEADLINE)."""
from __future__ import annotations

import asyncio
import os
import unittest
from typing import Any, Awaitable, Callable, List

import npipe
import npipe.asyncio as npa
from support import DEADLINE, unique_name


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(test(), DEADLINE))


def handler_count() -> int:
    return len(npa._reactor()._handlers)


class StreamsTest(unittest.TestCase):
    def test_echo_lines_and_bulk_with_many_clients(self) -> None:
        name = unique_name("aecho")
        payload = os.urandom(1 << 20)  # more than every buffer on the way: flow control both ways
        done: Any = None

        finished: List[int] = []
        all_finished = asyncio.Event  # created inside the loop below

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            writer.close()
            await writer.wait_closed()  # the transport is gone: its registration too
            finished.append(1)
            if len(finished) == 6:
                done.set()

        async def client(i: int) -> None:
            reader, writer = await npa.open_connection(name, timeout=DEADLINE)
            self.assertEqual(writer.get_extra_info("name"), name)
            self.assertIsInstance(writer.get_extra_info("pipe"), npipe.Client)
            writer.write(f"hello {i}\n".encode())
            self.assertEqual(await reader.readline(), f"hello {i}\n".encode())

            async def send() -> None:
                for start in range(0, len(payload), 100000):
                    writer.write(payload[start:start + 100000])
                    await writer.drain()

            sender = asyncio.ensure_future(send())
            self.assertEqual(await reader.readexactly(len(payload)), payload)
            await sender
            writer.close()
            await writer.wait_closed()

        async def main() -> None:
            nonlocal done
            done = all_finished()
            before = handler_count()
            async with await npa.start_server(echo, name) as server:
                self.assertTrue(server.is_serving())
                await asyncio.gather(*(client(i) for i in range(6)))
                await done.wait()  # every server-side handler saw its client leave and closed
            self.assertFalse(server.is_serving())
            self.assertEqual(handler_count(), before)

        run(main)

    def test_open_connection_failures_name_the_callers_terms(self) -> None:
        async def main() -> None:
            missing = unique_name("amiss")
            with self.assertRaises(npipe.PipeNotFoundError):
                await npa.open_connection(missing)
            with self.assertRaises(npipe.PipeTimeoutError) as cm:
                await npa.open_connection(missing, timeout=0.3)
            self.assertIn("within 0.3 s", cm.exception.message)
            with self.assertRaises(npipe.InvalidArgumentError):
                await npa.open_connection("bad/name")
            with self.assertRaises(ValueError):
                await npa.open_connection(missing, message=True)

        run(main)

    def test_open_waits_for_a_server_that_comes_later(self) -> None:
        name = unique_name("alate")

        async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"welcome")
            await writer.drain()
            writer.close()

        async def main() -> None:
            opening = asyncio.ensure_future(npa.open_connection(name, timeout=None))
            await asyncio.sleep(0)  # the open is under way (no server yet)
            self.assertFalse(opening.done())
            async with await npa.start_server(greet, name):
                reader, writer = await opening
                self.assertEqual(await reader.read(), b"welcome")  # then EOF: the server closed
                writer.close()

        run(main)

    def test_cancelling_an_open_and_a_read(self) -> None:
        name = unique_name("acancel")
        got: List[bytes] = []
        served = asyncio.Event  # created inside the loop below

        async def main() -> None:
            done = served()
            before = handler_count()
            opening = asyncio.ensure_future(npa.open_connection(unique_name("anone"), timeout=None))
            await asyncio.sleep(0)
            opening.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await opening
            self.assertEqual(handler_count(), before)  # the attempt ended with the cancel

            async def slow_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                with self.assertRaises(asyncio.TimeoutError):
                    await asyncio.wait_for(reader.read(10), 0.2)  # cancelled while nothing came
                writer.write(b"ready")
                got.append(await reader.readexactly(5))  # the stream still works afterwards
                writer.close()
                done.set()

            async with await npa.start_server(slow_reader, name):
                reader, writer = await npa.open_connection(name, timeout=DEADLINE)
                self.assertEqual(await reader.readexactly(5), b"ready")
                writer.write(b"after")
                await done.wait()
                writer.close()
            self.assertEqual(got, [b"after"])

        run(main)

    def test_a_peer_that_leaves(self) -> None:
        name = unique_name("aleave")
        seen: List[Any] = []
        finished: Any = None

        async def server_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(await reader.read())  # the client's bytes, then EOF: it left
            try:
                for _ in range(1000):  # writes to a peer that left fail, at the latest at drain
                    writer.write(b"x" * 65536)
                    await writer.drain()
            except (ConnectionError, OSError) as exc:
                seen.append(exc)
            writer.close()
            finished.set()

        async def main() -> None:
            nonlocal finished
            finished = asyncio.Event()
            async with await npa.start_server(server_side, name):
                reader, writer = await npa.open_connection(name, timeout=DEADLINE)
                writer.write(b"bye")
                await writer.drain()
                writer.transport.abort()  # leaves without a word
                await finished.wait()
            self.assertEqual(seen[0], b"bye")
            self.assertIsInstance(seen[1], (ConnectionError, OSError))

        run(main)

    def test_server_close_removes_the_name(self) -> None:
        name = unique_name("aclose")

        async def main() -> None:
            server = await npa.start_server(lambda r, w: w.close(), name)
            self.assertEqual(server.name, name)
            server.close()
            await server.wait_closed()
            with self.assertRaises(npipe.PipeNotFoundError):
                await npa.open_connection(name)
            serving = await npa.start_server(lambda r, w: w.close(), name)  # the name is free again
            forever = asyncio.ensure_future(serving.serve_forever())
            await asyncio.sleep(0)
            forever.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await forever
            self.assertFalse(serving.is_serving())

        run(main)


class DocExampleTest(unittest.TestCase):
    def test_the_module_docstring_example_runs(self) -> None:
        import re
        import subprocess
        import sys
        code = re.search(r"::\n\n(.*?)\n\nIt works", npa.__doc__ or "", re.S)
        assert code
        source = "\n".join(line[4:] for line in code.group(1).splitlines())
        source = source.replace('"demo"', repr(unique_name("adoc")))
        r = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "b'HELLO\\n'\n")


if __name__ == "__main__":
    unittest.main()
