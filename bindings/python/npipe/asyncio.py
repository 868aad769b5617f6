"""npipe for asyncio: :func:`open_connection` and :func:`start_server` give
:class:`asyncio.StreamReader` / :class:`asyncio.StreamWriter` pairs over named pipes, as their
namesakes in :mod:`asyncio` do over TCP::

    import asyncio, npipe.asyncio

    async def handle(reader, writer):
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    async def main():
        async with await npipe.asyncio.start_server(handle, "demo"):
            reader, writer = await npipe.asyncio.open_connection("demo", timeout=5)
            writer.write(b"hello\\n")
            print(await reader.readline())   # b'HELLO\\n'
            writer.close()

    asyncio.run(main())

It works on any event loop, the Windows Proactor loop included (which has no ``add_reader``):
one reactor thread per process waits on an :class:`npipe.Poll` and hands each readiness event
to the loop that owns the pipe with ``call_soon_threadsafe``; all reads and writes run on that
loop, non-blocking. The server side is an :class:`npipe.Listener` (no client sees "busy" while
the server is busy), the client side the non-blocking open (no thread waits while it connects).
Pipes are byte streams here (no message mode). A pipe of this module is registered with the
reactor's poll, so its blocking helpers (``recv``, ``sendall``, ...) are not available.
"""
from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, Union

from . import _errors
from ._listener import Listener
from ._pipe import Client, Name, Pipe
from ._poll import CONNECTED, ERROR, READ_CLOSED, READABLE, WRITABLE, Poll

__all__ = ["open_connection", "start_server", "PipeServer"]

_DEFAULT_LIMIT = 2**16  # asyncio's StreamReader limit
_READ_CHUNK = 256 * 1024
_READ_BUDGET = 4 * 1024 * 1024  # bytes read per readiness event before other callbacks get a turn
_HIGH_WATER = 64 * 1024

ClientConnected = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Union[None, Awaitable[None]]]


class _Reactor:
    """The process's reactor: one daemon thread waiting on one :class:`Poll`. Handlers run on
    the loop that registered them, never on the reactor thread."""

    def __init__(self) -> None:
        self.poll = Poll()
        self._tokens = itertools.count(1)  # 0 is the poll's wake token
        # token -> (loop, handler); changed on loop threads, read by the reactor thread (the GIL
        # makes each dict operation atomic)
        self._handlers: Dict[int, Tuple[asyncio.AbstractEventLoop, Callable[[int], None]]] = {}
        self._thread = threading.Thread(target=self._run, name="npipe asyncio reactor", daemon=True)
        self._thread.start()

    def add(self, obj: Union[Pipe, Listener], interests: int, handler: Callable[[int], None]) -> int:
        """Register ``obj``; ``handler(flags)`` runs on the running loop for each of its events."""
        loop = asyncio.get_running_loop()
        token = next(self._tokens)
        self._handlers[token] = (loop, handler)
        try:
            self.poll.register(obj, token, interests)
        except BaseException:
            del self._handlers[token]
            raise
        return token

    def remove(self, token: int) -> None:
        """Forget a registration (its object is closed, or about to be: that deregisters it)."""
        self._handlers.pop(token, None)

    def _run(self) -> None:
        wait = self.poll.wait
        while True:
            batches: Dict[asyncio.AbstractEventLoop, List[Tuple[int, int]]] = {}
            try:
                events = wait()
            except (ValueError, _errors.NpipeError):
                if self.poll.closed:
                    return  # the interpreter is exiting: the poll's finalizer closed it
                raise
            for event in events:
                entry = self._handlers.get(event.token)
                if entry is not None:
                    batches.setdefault(entry[0], []).append((event.token, int(event.flags)))
            for loop, batch in batches.items():
                try:
                    loop.call_soon_threadsafe(self._dispatch, batch)
                except RuntimeError:  # the loop is closed: nobody will handle its pipes again
                    for token, _ in batch:
                        self._handlers.pop(token, None)

    def _dispatch(self, batch: List[Tuple[int, int]]) -> None:
        for token, flags in batch:
            entry = self._handlers.get(token)
            if entry is None:
                continue  # closed meanwhile
            try:
                entry[1](flags)
            except Exception as exc:  # a handler's bug must not stop the others
                entry[0].call_exception_handler({"message": "npipe.asyncio event handler failed", "exception": exc})


_reactor_lock = threading.Lock()
_reactor_instance: Optional[_Reactor] = None


def _reactor() -> _Reactor:
    global _reactor_instance
    with _reactor_lock:
        if _reactor_instance is None:
            _reactor_instance = _Reactor()
        return _reactor_instance


class _PipeTransport(asyncio.Transport):
    """An asyncio transport over a connected pipe registered with the reactor (edge-triggered:
    it reads and writes until WouldBlockError, and remembers an edge it could not act on)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reactor: _Reactor, pipe: Pipe, token: Optional[int],
                 protocol: asyncio.Protocol, extra: Optional[Dict[str, Any]] = None) -> None:
        super().__init__({"pipe": pipe, "name": pipe.name, **(extra or {})})
        self._loop = loop
        self._reactor = reactor
        self._pipe = pipe
        self._protocol = protocol
        self._buffer = bytearray()
        self._paused_reading = False
        self._protocol_paused = False
        self._closing = False
        self._lost = False
        self._aborted = False
        self._eof = False
        self._high, self._low = _HIGH_WATER, _HIGH_WATER // 4
        if token is None:
            token = reactor.add(pipe, READABLE | WRITABLE, self._on_event)
        else:
            reactor._handlers[token] = (loop, self._on_event)
        self._token = token
        protocol.connection_made(self)
        # Data or EOF may already be there (its edge came before this transport): look now.
        loop.call_soon(self._read_ready)

    # -- events -----------------------------------------------------------------------------------
    def _on_event(self, flags: int) -> None:
        if flags & (READABLE | READ_CLOSED | ERROR):
            self._read_ready()
        if flags & (WRITABLE | ERROR) and self._buffer:
            self._write_ready()

    def _read_ready(self) -> None:
        if self._lost or self._eof or self._paused_reading or self._closing:
            return  # a paused transport looks again in resume_reading
        budget = _READ_BUDGET
        while budget > 0:
            try:
                data = self._pipe.read(_READ_CHUNK)
            except BlockingIOError:
                return
            except (OSError, ValueError) as exc:
                self._fatal_error(exc)
                return
            if not data:
                self._eof = True
                keep_open = self._protocol.eof_received()
                if not keep_open:
                    self.close()
                return
            self._protocol.data_received(data)
            if self._paused_reading or self._closing:
                return
            budget -= len(data)
        self._loop.call_soon(self._read_ready)  # more may be there: let other callbacks run first

    def _write_ready(self) -> None:
        buffer = self._buffer
        while buffer:
            try:
                n = self._pipe.write(buffer)
            except BlockingIOError:
                return  # WRITABLE follows
            except (OSError, ValueError) as exc:
                self._buffer.clear()
                self._fatal_error(exc)
                return
            del buffer[:n]
        self._maybe_resume_protocol()
        if self._closing:
            self._loop.call_soon(self._connection_lost, None)

    # -- asyncio.Transport ----------------------------------------------------------------------------
    def write(self, data: Any) -> None:
        """Write ``data`` without blocking; what the pipe cannot take now is buffered here (see
        :meth:`get_write_buffer_size`; ``StreamWriter.drain`` waits while it is above the limit)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._closing or self._lost:
            return  # like asyncio's transports: writes after close are dropped
        if not data:
            return
        if not self._buffer:
            # Straight into the pipe while it takes bytes (bytes and bytearray without a copy).
            view = memoryview(data)
            if view.format != "B" or view.ndim != 1:
                view = view.cast("B")
            try:
                n = self._pipe.write(data)
                while n < view.nbytes:
                    view = view[n:]
                    n = self._pipe.write(view)
                return
            except BlockingIOError:
                data = view
            except (OSError, ValueError) as exc:
                self._fatal_error(exc)
                return
        self._buffer += data
        self._maybe_pause_protocol()

    def can_write_eof(self) -> bool:
        """False: a named pipe has no half-close."""
        return False

    def write_eof(self) -> None:
        """Not supported: a named pipe has no half-close."""
        raise NotImplementedError("named pipes have no half-close: close the writer instead")

    def get_write_buffer_size(self) -> int:
        """Bytes buffered in this transport (beyond the pipe's own write buffer)."""
        return len(self._buffer)

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        """(low, high) water marks of the write buffer."""
        return self._low, self._high

    def set_write_buffer_limits(self, high: Optional[int] = None, low: Optional[int] = None) -> None:
        """Set the water marks (default high 64 KiB, low a quarter of high)."""
        high = _HIGH_WATER if high is None else high
        low = high // 4 if low is None else low
        if not 0 <= low <= high:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if not self._protocol_paused and len(self._buffer) > self._high:
            self._protocol_paused = True
            self._protocol.pause_writing()

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and len(self._buffer) <= self._low:
            self._protocol_paused = False
            self._protocol.resume_writing()

    def is_reading(self) -> bool:
        """True unless reading is paused or the transport is closing."""
        return not self._paused_reading and not self._closing and not self._lost

    def pause_reading(self) -> None:
        """Stop delivering data to the protocol (the pipe's buffers fill, then the peer waits)."""
        self._paused_reading = True

    def resume_reading(self) -> None:
        """Deliver data again (reads at once what arrived meanwhile)."""
        if self._paused_reading:
            self._paused_reading = False
            self._loop.call_soon(self._read_ready)

    def is_closing(self) -> bool:
        """True once :meth:`close` or :meth:`abort` was called or the connection was lost."""
        return self._closing or self._lost

    def close(self) -> None:
        """Close once the buffered bytes are written; the pipe then delivers what it holds for
        at most its ``linger`` while the reactor keeps running."""
        if self._closing or self._lost:
            return
        self._closing = True
        if not self._buffer:
            self._loop.call_soon(self._connection_lost, None)

    def abort(self) -> None:
        """Close at once, dropping buffered bytes (``connection_lost`` follows, as in asyncio)."""
        self._force_close(None)

    def _fatal_error(self, exc: BaseException) -> None:
        self._force_close(exc)

    def _force_close(self, exc: Optional[BaseException]) -> None:
        if self._lost or self._aborted:
            return
        self._aborted = True
        self._buffer.clear()
        self._closing = True
        self._loop.call_soon(self._connection_lost, exc)

    def _connection_lost(self, exc: Optional[BaseException]) -> None:
        if self._lost:
            return
        self._lost = True
        self._reactor.remove(self._token)
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._pipe.close()


async def open_connection(name: Name, *, timeout: Optional[float] = 0.0, limit: int = _DEFAULT_LIMIT,
                          **options: Any) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the pipe server ``name`` and return ``(reader, writer)``, as
    :func:`asyncio.open_connection` does for TCP.

    It opens without blocking the loop or a thread (``NPIPE_NONBLOCK_OPEN``, driven by the
    reactor): ``timeout`` seconds keep retrying while the server is busy or not there yet (0 =
    one attempt, None = until it comes; cancel the awaiting task to give up: the attempt ends at
    once). ``options`` are :class:`npipe.Client`'s (``current_user_only``, ``inbound_only``, ...).

    Raises:
        PipeNotFoundError / PipeBusyError: no server (``timeout`` 0).
        PipeTimeoutError: still absent or busy after ``timeout`` seconds (the message names it).
        PipeAccessError: access denied.
    """
    if options.get("message"):
        raise ValueError("npipe.asyncio streams are byte streams: message mode is not supported")
    loop = asyncio.get_running_loop()
    reactor = _reactor()
    pipe = Client(name, timeout=timeout, blocking=False, **options)
    connected = loop.create_future()

    def on_event(flags: int) -> None:
        if flags & CONNECTED and not connected.done():
            connected.set_result(None)

    token = None
    try:
        token = reactor.add(pipe, READABLE | WRITABLE, on_event)
        await connected
        err = pipe.take_error()
        if err is not None:
            if isinstance(err, _errors.PipeTimeoutError):
                raise _errors.PipeTimeoutError(err.code, f"open_connection({pipe.name!r}) did not connect within "
                                                         f"{timeout} s: {err.message}", os_error=err.os_error)
            raise err
    except BaseException:
        if token is not None:
            reactor.remove(token)
        pipe.close()  # a close while connecting cancels the attempt
        raise
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport = _PipeTransport(loop, reactor, pipe, token, protocol)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


class PipeServer:
    """What :func:`start_server` returns: the listener serving ``name``, like
    :class:`asyncio.Server`. ``async with server:`` closes it at the end; :meth:`serve_forever`
    serves until cancelled. Closing stops accepting; connections already made go on.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, reactor: _Reactor, listener: Listener,
                 client_connected_cb: ClientConnected, limit: int) -> None:
        self._loop = loop
        self._reactor = reactor
        self._listener = listener
        self._callback = client_connected_cb
        self._limit = limit
        self._closed = loop.create_future()
        self._token = reactor.add(listener, READABLE, self._accept_ready)

    @property
    def name(self) -> Optional[str]:
        """The pipe name served."""
        return self._listener.name

    @property
    def listener(self) -> Listener:
        """The :class:`npipe.Listener` behind the server."""
        return self._listener

    def is_serving(self) -> bool:
        """True until :meth:`close`."""
        return not self._closed.done()

    def _accept_ready(self, flags: int) -> None:
        if flags & ERROR and self.is_serving():
            err = self._listener.take_error()
            if err is not None:  # replenishing failed; the library retries on its own
                self._loop.call_exception_handler({"message": f"npipe listener {self.name!r}", "exception": err})
        while self.is_serving():
            try:
                pipe = self._listener.accept(blocking=False)
            except BlockingIOError:
                return
            reader = asyncio.StreamReader(limit=self._limit, loop=self._loop)
            protocol = asyncio.StreamReaderProtocol(reader, self._callback, loop=self._loop)
            try:
                _PipeTransport(self._loop, self._reactor, pipe, None, protocol)
            except BaseException:
                pipe.close()
                raise

    def close(self) -> None:
        """Stop accepting: the name goes away, clients not accepted yet see the end of the
        connection. Connections already accepted are not affected."""
        if self._closed.done():
            return
        self._reactor.remove(self._token)
        self._listener.close()
        self._closed.set_result(None)

    async def wait_closed(self) -> None:
        """Wait until :meth:`close` was called."""
        await asyncio.shield(self._closed)

    async def serve_forever(self) -> None:
        """Serve until the awaiting task is cancelled (then close) or :meth:`close` is called."""
        try:
            await asyncio.shield(self._closed)
        except asyncio.CancelledError:
            self.close()
            raise

    async def __aenter__(self) -> "PipeServer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        return f"<npipe.asyncio.PipeServer name={self.name!r} {'serving' if self.is_serving() else 'closed'}>"


async def start_server(client_connected_cb: ClientConnected, name: Name, *, limit: int = _DEFAULT_LIMIT,
                       **options: Any) -> PipeServer:
    """Serve the pipe name ``name``: for each client, ``client_connected_cb(reader, writer)``
    runs (a coroutine function becomes a task), as with :func:`asyncio.start_server`.

    The name exists when this returns; clients that come while the callback of another runs are
    connected and wait to be accepted (an :class:`npipe.Listener`, whose ``options`` -- such as
    ``first_instance``, ``current_user_only``, ``max_pending`` -- this takes).
    """
    if options.get("message"):
        raise ValueError("npipe.asyncio streams are byte streams: message mode is not supported")
    loop = asyncio.get_running_loop()
    return PipeServer(loop, _reactor(), Listener(name, **options), client_connected_cb, limit)
