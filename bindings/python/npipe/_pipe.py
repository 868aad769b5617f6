"""Pipe ends: :class:`Server` instances and :class:`Client` s, non-blocking I/O plus blocking helpers."""
from __future__ import annotations

import ctypes
import math
import os
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, NamedTuple, Optional, Sequence, Tuple, TypeVar, Union

from . import _errors, _native
from ._poll import _SLICE_S, timeout_ms

if TYPE_CHECKING:
    from ._poll import Poll

__all__ = ["Pipe", "Server", "Client", "PipeInfo", "Peer", "MsgRead", "create", "open", "from_raw_handle",
           "resolve_name", "MSG_PARTIAL", "MSG_EMPTY"]

#: ``read_msg`` flag: more of the same message follows.
MSG_PARTIAL = _native.MSG_PARTIAL
#: ``read_msg`` flag: a zero-length message was read (not EOF).
MSG_EMPTY = _native.MSG_EMPTY

Name = Union[str, bytes, "os.PathLike[str]"]
Buffer = Union[bytes, bytearray, memoryview]
WritableBuffer = Union[bytearray, memoryview]

_DEFAULT_READ = 64 * 1024
# recv()/read() read into a per-pipe buffer of at least this size, kept while it is at most
# _SCRATCH_KEEP (a one-off huge read does not pin its buffer).
_SCRATCH_MIN = 64 * 1024
_SCRATCH_KEEP = 1024 * 1024
_DEFAULT_LINGER_S = 1.0  # the library's default linger_ms
# Waiting for accepted bytes to complete, while there is room to write: the library's retry
# clock (1 ms, doubling, at most 50 ms apart).
_FLUSH_PAUSE_MIN_S = 0.001
_FLUSH_PAUSE_MAX_S = 0.05
_INT32_MAX = 2**31 - 1
_T = TypeVar("_T")
_P = TypeVar("_P", bound="Pipe")
_S = TypeVar("_S", bound=ctypes.Structure)


def _encode_name(name: Name) -> bytes:
    if isinstance(name, bytes):
        raw = name
    else:
        raw = os.fspath(name).encode("utf-8", "surrogateescape")  # invalid UTF-8 reaches the library's check
    if b"\0" in raw:
        raise _errors.InvalidArgumentError(_errors.EINVAL, "pipe name contains a NUL character")
    return raw


def _linger_ms(linger: Optional[float]) -> int:
    # Python: None = library default (1 s), <= 0 = discard at once, > 0 = seconds.
    if linger is None:
        return 0
    if linger <= 0:
        return -1
    return min(_INT32_MAX, math.ceil(linger * 1000))


def _in_buffer(data: Any) -> Tuple[Any, int]:
    """(a ctypes-passable pointer source, byte count) for any bytes-like object, zero-copy where possible."""
    if isinstance(data, bytes):
        return data, len(data)
    view = memoryview(data)
    if not view.c_contiguous:
        copy = view.tobytes()
        return copy, len(copy)
    view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
    if view.readonly:
        copy = view.tobytes()
        return copy, len(copy)
    if view.nbytes == 0:
        return None, 0
    return (ctypes.c_char * view.nbytes).from_buffer(view), view.nbytes


def _out_buffer(buf: Any) -> Tuple[Any, int]:
    """(a ctypes array over the caller's writable buffer, byte count), zero-copy."""
    view = memoryview(buf)
    if view.readonly:
        raise TypeError("readinto() needs a writable buffer (bytearray, memoryview, array, ...)")
    if not view.c_contiguous:
        raise ValueError("readinto() needs a C-contiguous buffer")
    view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
    if view.nbytes == 0:
        return None, 0
    return (ctypes.c_char * view.nbytes).from_buffer(view), view.nbytes


def _out_address(buf: Any) -> Tuple[int, int, Any]:
    """(address, byte count, an object to keep until the call returned) for a writable buffer,
    zero-copy. The fast path for a bytearray costs one small ctypes object, not an array type."""
    if type(buf) is bytearray:
        n = len(buf)
        if n == 0:
            return 0, 0, None
        keep = ctypes.c_char.from_buffer(buf)
        return ctypes.addressof(keep), n, keep
    cbuf, n = _out_buffer(buf)
    if cbuf is None:
        return 0, 0, None
    return ctypes.addressof(cbuf), n, cbuf


class _Scratch:
    """A reusable receive buffer: a bytearray, its address and a view, made once."""

    __slots__ = ("data", "keep", "address", "view", "size")

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)  # zero-filled once, at creation, not per call
        self.keep = ctypes.c_char.from_buffer(self.data)
        self.address = ctypes.addressof(self.keep)
        self.view = memoryview(self.data)
        self.size = size


def _timeout_error(what: str, timeout: Optional[float]) -> _errors.PipeTimeoutError:
    return _errors.PipeTimeoutError(_errors.ETIMEDOUT, f"{what} did not complete within {timeout} s")


@dataclass(frozen=True)
class PipeInfo:
    """A snapshot of a pipe's state (``npipe_info_t``)."""

    flags: int  #: INFO_SERVER / INFO_CONNECTED plus the creation flags (MESSAGE, INBOUND_ONLY, ...)
    in_buffer_size: int
    out_buffer_size: int
    max_instances: int  #: 0 = unlimited
    peer_pid: int  #: 0 only if the platform cannot tell
    bytes_read: int  #: delivered to the caller over the handle's lifetime
    bytes_written: int  #: accepted from the caller over the handle's lifetime
    write_pending: int  #: accepted but not yet completed by the OS
    read_available: int  #: bytes a read could return now
    peer_unread: int  #: written bytes the peer has not read yet
    waiting_instances: int = 0  #: a listener's instances waiting for clients now (Linux: 0)
    pending_accepts: int = 0  #: a listener's connected pipes not accepted yet

    @property
    def is_listener(self) -> bool:
        """This is a :class:`~npipe.Listener`'s snapshot."""
        return bool(self.flags & _native.INFO_LISTENER)

    @property
    def is_server(self) -> bool:
        """This end is a server instance."""
        return bool(self.flags & _native.INFO_SERVER)

    @property
    def connected(self) -> bool:
        """A peer is connected."""
        return bool(self.flags & _native.INFO_CONNECTED)

    @property
    def message(self) -> bool:
        """The pipe is in message mode."""
        return bool(self.flags & _native.MESSAGE)


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a connection (``npipe_peer_identity``): see :attr:`Pipe.peer`."""

    pid: Optional[int]  #: the peer's process id (None if unknown); informative only, ids are reused
    uid: Optional[int]  #: Linux: the peer's uid; None on Windows
    gid: Optional[int]  #: Linux: the peer's gid; None on Windows
    sid: Optional[str]  #: Windows: the peer's user SID ("S-1-5-21-..."); None on Linux
    same_user: bool  #: the peer runs as this process's user


class MsgRead(NamedTuple):
    """What :meth:`Pipe.read_msg` returns: the bytes and the ``MSG_*`` flags."""

    data: bytes
    flags: int

    @property
    def partial(self) -> bool:
        """More of the same message follows in the next read."""
        return bool(self.flags & MSG_PARTIAL)

    @property
    def empty(self) -> bool:
        """A zero-length message was read (not EOF)."""
        return bool(self.flags & MSG_EMPTY)

    @property
    def eof(self) -> bool:
        """The end of the connection: no bytes and not an empty message."""
        return not self.data and not self.flags & MSG_EMPTY


class _State:
    """What the finalizer needs: kept apart from the Pipe so the finalizer holds no reference to it."""

    __slots__ = ("handle", "waited")

    def __init__(self, handle: int) -> None:
        self.handle = handle
        # True once a blocking helper called npipe_wait: the library then drives the pipe with a
        # private poll it is bound to for life, and npipe_close releases it without a linger.
        self.waited = False


def _release(lib: ctypes.CDLL, state: _State) -> None:
    handle = state.handle
    state.handle = 0
    if handle:
        lib.npipe_close(handle)


class Pipe:
    """One end of a named pipe: the base of :class:`Server` and :class:`Client`.

    **Non-blocking API** (for use with a :class:`~npipe.Poll`): :meth:`read`, :meth:`readinto`,
    :meth:`read_msg`, :meth:`readv`, :meth:`write`, :meth:`writev`, :meth:`flush`. They raise
    :class:`WouldBlockError` (a :class:`BlockingIOError`) when they would block; a pipe makes no
    progress until it is registered with a poll.

    **Blocking helpers** (for scripts): :meth:`recv`, :meth:`sendall`, :meth:`recv_msg` and
    :meth:`Server.connect`. They work on a pipe you never registered: they try the non-blocking
    call and, when it would block, wait with ``npipe_wait``, which drives the pipe with a private
    poll of the library's. A pipe is bound for life to the first poll it is registered with, so a
    pipe used with the blocking helpers cannot be registered with your own :class:`~npipe.Poll`
    afterwards, and a pipe registered with your poll cannot use the blocking helpers (both raise
    :class:`PipeExistsError`). Several threads may use the blocking helpers of one pipe at once
    (e.g. one receives while another sends); :meth:`close` from another thread ends their waits
    (they raise :class:`ValueError`, as for a closed file).

    Close a pipe with :meth:`close`, a ``with`` block, or let the garbage collector do it; methods
    of a closed pipe raise :class:`ValueError`, like a closed file.
    """

    _kind = "Pipe"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("create pipes with npipe.Server(...), npipe.Client(...) or npipe.from_raw_handle(...)")

    def _init(self, lib: ctypes.CDLL, handle: int, name: Optional[str], message: bool, linger: Optional[float]) -> None:
        self._lib = lib
        self._state = _State(handle)
        self._finalizer = weakref.finalize(self, _release, lib, self._state)
        self._name = name
        self._message = message
        self._drain_s = _DEFAULT_LINGER_S if linger is None else max(0.0, linger)
        self._poll: Optional["Poll"] = None  # the user Poll this pipe is bound to
        self._scratch: Optional[_Scratch] = None  # recv()/read()'s buffer, see _take_scratch
        # The last blocking read had to wait: the next one most likely will too (a peer that
        # answers requests), so without a timeout it waits first (see _recv_loop).
        self._read_waited = False

    @classmethod
    def _adopt(cls: type, lib: ctypes.CDLL, handle: int, name: Optional[str], message: bool,
               linger: Optional[float]) -> Any:
        self = object.__new__(cls)
        Pipe._init(self, lib, handle, name, message, linger)
        return self

    # -- lifetime -------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once the pipe is closed."""
        return not self._finalizer.alive

    @property
    def handle(self) -> int:
        """The raw ``npipe_t`` handle (for calling the C API directly)."""
        handle = self._state.handle
        if not handle or not self._finalizer.alive:
            raise ValueError(f"I/O operation on closed {self._kind}")
        return handle

    @property
    def name(self) -> Optional[str]:
        """The name the pipe was created or opened with (None for adopted handles)."""
        return self._name

    @property
    def message_mode(self) -> bool:
        """True for a message-mode pipe."""
        return self._message

    @property
    def poll(self) -> Optional["Poll"]:
        """The :class:`~npipe.Poll` this pipe is bound to, if it was registered with one."""
        return self._poll

    def close(self) -> None:
        """Close the pipe. Idempotent; never raises for a pipe that is already closed.

        Bytes accepted by :meth:`write` keep draining in the background while the pipe's poll is
        waited on, for at most ``linger``. A pipe used with the blocking helpers has no event loop
        behind it (the library releases it at once when it is closed), so ``close`` itself drains
        such bytes first, for at most ``linger`` (default 1 s).
        """
        state = self._state
        if not self._finalizer.alive:
            return
        if state.waited and state.handle and self._drain_s > 0:
            try:
                self._wait_flushed(time.monotonic() + self._drain_s, self._drain_s, "close")
            except (_errors.NpipeError, ValueError):
                pass  # not delivered within the linger, or the peer is gone: close anyway
        self._finalizer()

    def __enter__(self: _P) -> _P:
        self.handle  # raises ValueError when closed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"handle={self._state.handle:#x}"
        name = f" name={self._name!r}" if self._name is not None else ""
        return f"<npipe.{self._kind}{name} {state}>"

    def _fail(self, rc: int) -> BaseException:
        err = _native.last_error(rc)  # read the thread-local detail first
        if rc == _errors.EBADF and self.closed:
            return ValueError(f"I/O operation on closed {self._kind}")
        return err

    # -- non-blocking I/O -----------------------------------------------------------------------
    def read(self, n: int = _DEFAULT_READ) -> bytes:
        """Read up to ``n`` buffered bytes **without blocking**; ``b""`` at the end of the connection.

        This is the event-loop call (for a pipe registered with a :class:`~npipe.Poll`); a script
        that wants to wait for data calls :meth:`recv` instead, or reads a :meth:`makefile`.
        On a message pipe it returns at most one message's bytes and skips empty messages.

        Raises:
            WouldBlockError: nothing is buffered yet (wait for ``READABLE``).
        """
        handle = self._state.handle or self.handle
        if n < 0:
            raise ValueError("n must be >= 0")
        if n == 0:
            return b""
        scratch = self._take_scratch(n)
        try:
            rc = self._lib.npipe_read(handle, scratch.address, n)
            if rc < 0:
                raise self._fail(rc)
            return scratch.view[:rc].tobytes()
        finally:
            if scratch.size <= _SCRATCH_KEEP:
                self._scratch = scratch

    def readinto(self, buf: WritableBuffer) -> int:
        """Read into ``buf`` (a bytearray, memoryview, array, ...) **without blocking** and
        without copying; returns the count, 0 at the end of the connection (or for an empty
        ``buf``). The blocking form is :meth:`recv_into`.

        Raises:
            WouldBlockError: nothing is buffered yet.
        """
        handle = self._state.handle or self.handle
        address, n, keep = _out_address(buf)
        if n == 0:
            return 0
        rc = self._lib.npipe_read(handle, address, n)
        del keep  # release the buffer export so a bytearray can be resized again
        if rc < 0:
            raise self._fail(rc)
        return rc

    def _take_scratch(self, n: int) -> "_Scratch":
        """A receive buffer of at least ``n`` bytes, reused across calls (threads that read at
        once each get their own: the pipe holds one between calls, and a reader takes it)."""
        scratch = self._scratch
        self._scratch = None
        if scratch is None or scratch.size < n:
            scratch = _Scratch(max(n, _SCRATCH_MIN))
        return scratch

    def readv(self, buffers: Sequence[WritableBuffer]) -> int:
        """Read into several buffers in order; returns the total count (0 at EOF).

        Raises:
            WouldBlockError: nothing is buffered yet.
        """
        handle = self.handle
        outs = [_out_buffer(b) for b in buffers]
        iov = (_native.IoVec * max(1, len(outs)))()
        for i, (cbuf, n) in enumerate(outs):
            iov[i].base = ctypes.addressof(cbuf) if cbuf is not None else None
            iov[i].len = n
        rc = self._lib.npipe_readv(handle, iov, len(outs))
        del outs
        if rc < 0:
            raise self._fail(rc)
        return rc

    def read_msg(self, n: int = _DEFAULT_READ) -> MsgRead:
        """Read at most one message (or up to ``n`` bytes of it): returns ``MsgRead(data, flags)``.

        ``flags`` has ``MSG_PARTIAL`` when the rest of the message follows, ``MSG_EMPTY`` for an
        empty message; ``b""`` without flags is EOF. In byte mode it reads like :meth:`read`.

        Raises:
            WouldBlockError: nothing is buffered yet.
        """
        handle = self.handle
        if n < 0:
            raise ValueError("n must be >= 0")
        buf = ctypes.create_string_buffer(max(1, n))
        flags = ctypes.c_uint32(0)
        rc = self._lib.npipe_read_msg(handle, buf, n, ctypes.byref(flags))
        if rc < 0:
            raise self._fail(rc)
        return MsgRead(ctypes.string_at(buf, rc), flags.value)

    def write(self, data: Buffer) -> int:
        """Copy bytes into the pipe's write buffer and return how many it took (maybe fewer than
        ``len(data)``). They are handed to the OS at once. On a message pipe ``data`` is one
        message, taken whole or not at all. bytearray and writable memoryviews are not copied.

        Raises:
            WouldBlockError: the write buffer is full (wait for ``WRITABLE``).
            PipeBrokenError: the peer is gone.
        """
        handle = self.handle
        cbuf, n = _in_buffer(data)
        rc = self._lib.npipe_write(handle, cbuf, n)
        del cbuf
        if rc < 0:
            raise self._fail(rc)
        return rc

    def writev(self, buffers: Sequence[Buffer]) -> int:
        """Write several buffers in order (one message on a message pipe); returns the count taken.

        Raises:
            WouldBlockError: the write buffer is full.
        """
        handle = self.handle
        ins = [_in_buffer(b) for b in buffers]
        iov = (_native.IoVec * max(1, len(ins)))()
        for i, (cbuf, n) in enumerate(ins):
            iov[i].base = ctypes.cast(cbuf, ctypes.c_void_p).value if cbuf is not None else None
            iov[i].len = n
        rc = self._lib.npipe_writev(handle, iov, len(ins))
        del ins
        if rc < 0:
            raise self._fail(rc)
        return rc

    def flush(self, blocking: bool = False, timeout: Optional[float] = None) -> bool:
        """Whether every accepted byte has been handed to the OS and completed.

        ``flush()`` answers at once (for a pipe registered with a :class:`~npipe.Poll`): True
        when done, False while some are pending (a ``WRITABLE`` event follows when they are).
        ``flush(blocking=True, timeout=None)`` waits until they are done and returns True: what
        a script calls after :meth:`sendall` when it must know the OS has the bytes. It does
        not wait for the peer to read them: that is :meth:`drain`.

        Raises:
            PipeTimeoutError: ``blocking`` and not done within ``timeout`` seconds.
            PipeBrokenError: the peer is gone.
        """
        handle = self._state.handle or self.handle
        rc = self._lib.npipe_flush(handle)
        if rc == _errors.EAGAIN:
            if not blocking:
                return False
            deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
            self._wait_flushed(deadline, timeout, "flush")
            return True
        if rc < 0:
            raise self._fail(rc)
        return True

    def take_error(self) -> Optional[_errors.NpipeError]:
        """Return (not raise) the first background failure once and clear it; None if there is none.

        After a ``CONNECTED`` event it is None if a client is connected, else why the connect failed.
        """
        handle = self.handle
        rc = self._lib.npipe_take_error(handle)
        if rc >= 0:
            return None
        if rc == _errors.EBADF:
            raise self._fail(rc)
        return _errors.error_for(rc, _native.strerror(rc))

    def info(self) -> PipeInfo:
        """A snapshot of the pipe's state and counters."""
        info = self._query(self._lib.npipe_get_info, _native.InfoStruct())
        return PipeInfo(info.flags, info.in_buffer_size, info.out_buffer_size, info.max_instances, info.peer_pid,
                        info.bytes_read, info.bytes_written, info.write_pending, info.read_available,
                        info.peer_unread, info.waiting_instances, info.pending_accepts)

    @property
    def peer(self) -> Peer:
        """Who is on the other end: a server learns its client, a client its server (Linux:
        ``SO_PEERCRED``; Windows: the client's token user, or the owner of the server's pipe). The
        answer is kept for the connection, also after the peer left.

        Raises:
            WouldBlockError: a Windows server whose client has sent nothing yet (read first), or a
                client still connecting.
            NotConnectedError: a server instance without a client.
            PipeAccessError: Windows: a client that allows only anonymous impersonation.
        """
        out = self._query(self._lib.npipe_peer_identity, _native.PeerStruct())
        unknown = 0xFFFFFFFF  # uid/gid on Windows
        return Peer(pid=out.pid or None, uid=None if out.uid == unknown else out.uid,
                    gid=None if out.gid == unknown else out.gid, sid=out.sid.decode("ascii", "replace") or None,
                    same_user=bool(out.flags & _native.PEER_SAME_USER))

    def drain(self, timeout: Optional[float] = None, *, blocking: bool = True) -> bool:
        """Wait until the peer has read every byte written so far (``npipe_drain``), not just
        until the OS has them (:meth:`flush`). A server that disconnects a client discards what the
        client has not read, so the pattern is: write the response, ``drain()``, ``disconnect()``.

        Blocking (the default): wait up to ``timeout`` seconds (None = forever) and return True;
        uses the private poll of the blocking helpers. ``blocking=False`` (for pipes registered
        with a :class:`~npipe.Poll`): True when drained, False while not (a ``WRITABLE`` event
        follows). Under Wine a pipe counts as drained once flushed (Wine reports no write quota).

        Raises:
            PipeBrokenError: the peer left before it had read everything.
            PipeTimeoutError: not drained within ``timeout``.
            PipeExistsError: blocking drain of a pipe registered with a user :class:`~npipe.Poll`.
        """
        return self._until_ok(self._lib.npipe_drain, timeout, blocking, "drain")

    def _query(self, call: Callable[[int, Any], int], out: _S) -> _S:
        """Fills ``out``, an output struct that starts with ``size``, with ``call(handle, &out)``."""
        handle = self.handle
        out.size = ctypes.sizeof(out)
        rc = call(handle, ctypes.byref(out))
        if rc < 0:
            raise self._fail(rc)
        return out

    def raw_handle(self) -> int:
        """The OS handle (a socket descriptor on Linux, a HANDLE on Windows), lent: the library
        keeps owning it, so do not close it."""
        handle = self.handle
        out = _native.intptr_t()
        rc = self._lib.npipe_raw_handle(handle, ctypes.byref(out))
        if rc < 0:
            raise self._fail(rc)
        return out.value

    # -- blocking helpers -----------------------------------------------------------------------
    def _wait(self, handle: int, interests: int, deadline: Optional[float], timeout: Optional[float],
              what: str) -> int:
        """One ``npipe_wait`` for ``interests``, at most one slice (so Ctrl-C is honoured between
        slices) and never past ``deadline``; returns the condition bits (0: the slice passed).

        Raises the caller's timeout (naming ``timeout``, not the slice) once ``deadline`` passed.
        """
        if self._poll is not None:
            raise _errors.PipeExistsError(
                _errors.EEXIST,
                "the pipe is registered with a Poll (it is bound to it for life), so the blocking helpers "
                "(connect/recv/sendall/recv_msg) cannot wait on it: wait for events on that Poll and use "
                "the non-blocking calls (read/write/connect(blocking=False)) instead",
            )
        left = _SLICE_S if deadline is None else min(_SLICE_S, deadline - time.monotonic())
        if left <= 0:
            raise _timeout_error(what, timeout)
        self._state.waited = True
        rc = self._lib.npipe_wait(handle, interests, timeout_ms(left))
        if rc < 0:
            raise self._fail(rc)
        return rc

    def _until(self, attempt: Callable[[], Optional[_T]], interests: int, timeout: Optional[float], what: str) -> _T:
        """Call ``attempt`` (None = would block) until it succeeds, waiting for ``interests`` in
        between: one call across the boundary when the pipe is ready."""
        handle = self.handle
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            result = attempt()
            if result is not None:
                return result
            self._wait(handle, interests, deadline, timeout, what)

    def _wait_flushed(self, deadline: Optional[float], timeout: Optional[float], what: str) -> None:
        """Block until ``npipe_flush`` answers NPIPE_OK, or raise the timeout at ``deadline``."""
        handle = self.handle

        def flushed() -> bool:
            rc = self._lib.npipe_flush(handle)
            if rc == _errors.EAGAIN:
                return False
            if rc < 0:
                raise self._fail(rc)
            return True

        self._pause_until(flushed, deadline, timeout, what)

    def _pause_until(self, check: Callable[[], bool], deadline: Optional[float], timeout: Optional[float],
                     what: str) -> None:
        """Block until ``check()`` answers True (a flush or a drain completed), or raise the timeout
        at ``deadline``."""
        handle = self.handle
        pause = _FLUSH_PAUSE_MIN_S
        while not check():
            if not self._wait(handle, _native.WRITABLE, deadline, timeout, what) & _native.WRITABLE:
                continue  # the buffer was full: the wait blocked until room freed up
            # WRITABLE holds as soon as there is room, also while accepted bytes are still on
            # their way, so it cannot tell when they complete. Keep the pipe driven (npipe_wait
            # for READABLE) for a short, growing pause instead of asking again at once.
            if check():
                return
            left = pause if deadline is None else min(pause, deadline - time.monotonic())
            if left > 0 and self._lib.npipe_wait(handle, _native.READABLE, timeout_ms(left)) > 0:
                time.sleep(left)  # unread data makes that wait return at once: sleep instead
            pause = min(pause * 2, _FLUSH_PAUSE_MAX_S)

    def _until_ok(self, call: Callable[[int], int], timeout: Optional[float], blocking: bool, what: str) -> bool:
        """For npipe_drain, which answers NPIPE_OK or NPIPE_EAGAIN: blocking, repeat it while the pipe is
        driven until NPIPE_OK; else True for NPIPE_OK, False for NPIPE_EAGAIN."""
        handle = self.handle

        def attempt() -> bool:
            rc = call(handle)
            if rc == _errors.EAGAIN:
                return False
            if rc < 0:
                raise self._fail(rc)
            return True

        if not blocking:
            return attempt()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        self._pause_until(attempt, deadline, timeout, what)
        return True

    def _blocked(self, handle: int, interests: int, deadline: Optional[float], timeout: Optional[float],
                 what: str) -> Optional[float]:
        """The slow path of a blocking helper whose call answered NPIPE_EAGAIN: waits (one slice)
        for ``interests``; returns the deadline, computed on the first call (``deadline`` -1.0 =
        not computed yet), so the fast path never reads the clock."""
        if deadline == -1.0:
            deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        self._wait(handle, interests, deadline, timeout, what)
        return deadline

    def recv(self, n: int = _DEFAULT_READ, timeout: Optional[float] = None) -> bytes:
        """Block until data arrives, then return up to ``n`` bytes; ``b""`` at the end of the
        connection (like :meth:`socket.socket.recv`). One call into the library when data is
        there; the bytes are read into a buffer the pipe reuses and copied out once.

        Raises:
            PipeTimeoutError: nothing arrived within ``timeout`` seconds (None = wait forever).
            PipeExistsError: the pipe is registered with a user :class:`~npipe.Poll`.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        handle = self._state.handle or self.handle
        if n == 0:
            return b""
        scratch = self._take_scratch(n)
        try:
            rc = self._recv_loop(handle, scratch.address, n, timeout, "recv")
            return scratch.view[:rc].tobytes()
        finally:
            if scratch.size <= _SCRATCH_KEEP:
                self._scratch = scratch

    def recv_into(self, buffer: WritableBuffer, nbytes: int = 0, timeout: Optional[float] = None) -> int:
        """Block until data arrives, then read up to ``nbytes`` (0 = ``len(buffer)``) straight
        into ``buffer`` (a bytearray, memoryview, array, ...); returns the count, 0 at the end of
        the connection (like :meth:`socket.socket.recv_into`). No copy, no allocation.

        Raises:
            PipeTimeoutError: nothing arrived within ``timeout`` seconds (None = wait forever).
            PipeExistsError: the pipe is registered with a user :class:`~npipe.Poll`.
        """
        return self._recv_into(buffer, nbytes, timeout, "recv_into")

    def _recv_into(self, buffer: WritableBuffer, nbytes: int, timeout: Optional[float], what: str) -> int:
        handle = self._state.handle or self.handle
        address, size, keep = _out_address(buffer)
        if nbytes < 0 or nbytes > size:
            raise ValueError("nbytes must be in 0..len(buffer)")
        n = nbytes or size
        if n == 0:
            return 0
        try:
            return self._recv_loop(handle, address, n, timeout, what)
        finally:
            del keep  # release the buffer export so a bytearray can be resized again

    def _recv_loop(self, handle: int, address: int, n: int, timeout: Optional[float], what: str) -> int:
        """npipe_read of up to ``n`` bytes at ``address`` until it answers, waiting in between.

        Without a timeout, after a read that had to wait, it waits first: a wait for READABLE
        alone may take the bytes inside the OS's read (docs/design.md), so a read that must wait
        is one blocking OS read instead of a read that finds nothing, the wait and the read; bytes
        already there end the wait at once. (With a timeout it reads first, so a timeout of 0
        still takes what is there.)"""
        read = self._lib.npipe_read
        deadline: Optional[float] = -1.0
        waited = self._read_waited and timeout is None
        if waited:
            deadline = self._blocked(handle, _native.READABLE, deadline, timeout, what)
        while True:
            rc = read(handle, address, n)
            if rc >= 0:
                self._read_waited = waited
                return rc
            if rc != _errors.EAGAIN:
                raise self._fail(rc)
            waited = True
            deadline = self._blocked(handle, _native.READABLE, deadline, timeout, what)

    def sendall(self, data: Buffer, timeout: Optional[float] = None) -> None:
        """Block until the library has accepted all of ``data`` (like
        :meth:`socket.socket.sendall`); on a message pipe ``data`` is sent as one message.

        It returns without waiting for the OS to complete the bytes, so writes overlap: the last
        few (at most the write buffer) move on while this pipe's next blocking call (``recv``,
        another ``sendall``, ...) waits, and :meth:`flush` with ``blocking=True`` or
        :meth:`close` wait until the OS has them. The payload is not copied for bytes, bytearray
        and writable views beyond what the library's buffer takes.

        Raises:
            PipeTimeoutError: not accepted within ``timeout`` seconds (some bytes may have been sent).
            PipeBrokenError: the peer is gone.
            PipeExistsError: the pipe is registered with a user :class:`~npipe.Poll`.
        """
        self._sendall(data, timeout, "sendall")

    def _sendall(self, data: Buffer, timeout: Optional[float], what: str) -> None:
        handle = self._state.handle or self.handle
        write = self._lib.npipe_write
        if type(data) is bytes:
            total = len(data)
            rc = write(handle, data, total)  # the common case: all taken at once
            if rc == total:
                return
            cbuf: Any = data
            base = ctypes.cast(data, ctypes.c_void_p).value or 0
        else:
            cbuf, total = _in_buffer(data)
            base = ctypes.addressof(cbuf) if isinstance(cbuf, ctypes.Array) else (
                ctypes.cast(cbuf, ctypes.c_void_p).value or 0)
            rc = write(handle, base or None, total)
        sent = 0
        deadline: Optional[float] = -1.0
        try:
            while True:
                if rc >= 0:
                    sent += rc
                    if sent >= total:
                        return
                elif rc == _errors.EAGAIN:
                    deadline = self._blocked(handle, _native.WRITABLE, deadline, timeout, what)
                else:
                    raise self._fail(rc)
                rc = write(handle, base + sent, total - sent)
        finally:
            del cbuf

    def send(self, data: Buffer, timeout: Optional[float] = None) -> int:
        """Block until the library accepts some of ``data``, and return how many bytes it took
        (like :meth:`socket.socket.send`); a message pipe takes a message whole.

        Raises:
            PipeTimeoutError: nothing accepted within ``timeout`` seconds.
            PipeBrokenError: the peer is gone.
        """
        handle = self._state.handle or self.handle
        cbuf, total = _in_buffer(data)
        write = self._lib.npipe_write
        deadline: Optional[float] = -1.0
        try:
            while True:
                rc = write(handle, cbuf, total)
                if rc >= 0:
                    return rc
                if rc != _errors.EAGAIN:
                    raise self._fail(rc)
                deadline = self._blocked(handle, _native.WRITABLE, deadline, timeout, "send")
        finally:
            del cbuf

    def makefile(self, mode: str = "r", buffering: Optional[int] = None, *, encoding: Optional[str] = None,
                 errors: Optional[str] = None, newline: Optional[str] = None,
                 timeout: Optional[float] = None) -> Any:
        """A file object over this pipe, as :meth:`socket.socket.makefile` gives one.

        ``mode`` is ``"r"``, ``"w"`` or ``"rw"``, plus ``"b"`` for bytes (else text, with
        ``encoding``, ``errors`` and ``newline`` as for :func:`open`). ``buffering``: None or
        -1 = :data:`io.DEFAULT_BUFFER_SIZE`, 0 = the unbuffered :class:`PipeIO` (binary only).
        So ``readline()``, ``for line in f``, ``read(n)`` (until ``n`` bytes or the end of the
        connection) and ``read()`` (until the end) work as on a file. Reads and writes block,
        each bounded by ``timeout`` (None = forever); ``flush()`` waits until the OS has the
        bytes. Closing the file leaves the pipe open. It uses the blocking helpers, so the pipe
        cannot be registered with a :class:`~npipe.Poll`.
        """
        from ._file import makefile

        return makefile(self, mode, buffering, encoding=encoding, errors=errors, newline=newline, timeout=timeout)

    def send_msg(self, data: Buffer, timeout: Optional[float] = None) -> None:
        """Send ``data`` as one message (= :meth:`sendall` on a message pipe)."""
        self.sendall(data, timeout)

    def recv_msg(self, timeout: Optional[float] = None, max_size: int = 16 * 1024 * 1024) -> bytes:
        """Block until one whole message has arrived and return it (``b""`` for an empty message).
        In byte mode it returns whatever bytes arrived, like :meth:`recv`.

        Raises:
            EOFError: the connection ended (no partial message is dropped silently: one cut short by
                the end of the connection raises EOFError too).
            PipeTimeoutError: no whole message within ``timeout`` seconds.
        """
        handle = self.handle
        chunk = 64 * 1024
        buf = ctypes.create_string_buffer(chunk)
        flags = ctypes.c_uint32(0)
        parts: List[bytes] = []
        size = 0

        def attempt() -> Optional[bytes]:
            nonlocal size
            while True:
                rc = self._lib.npipe_read_msg(handle, buf, chunk, ctypes.byref(flags))
                if rc == _errors.EAGAIN:
                    return None
                if rc < 0:
                    raise self._fail(rc)
                if rc == 0 and not flags.value & MSG_EMPTY:
                    if parts:
                        raise EOFError(f"the connection ended inside a message after {size} bytes")
                    raise EOFError("the connection ended")
                parts.append(ctypes.string_at(buf, rc))
                size += rc
                if size > max_size:
                    raise _errors.MessageTooLargeError(_errors.EMSGSIZE, f"message larger than {max_size} bytes")
                if not flags.value & MSG_PARTIAL:
                    return b"".join(parts)

        return self._until(attempt, _native.READABLE, timeout, "recv_msg")


def _fill_server_options(opts: Any, *, message: bool, first_instance: bool, inbound_only: bool,
                         outbound_only: bool, current_user_only: bool, allow_remote: bool,
                         linger: Optional[float], sddl: Optional[str], **counts: int) -> None:
    """Fill the fields a server's and a listener's options share, plus the uint32 ``counts``
    (max_instances, in_buffer_size, spare_instances, ...) by name."""
    opts.flags = ((_native.MESSAGE if message else 0) | (_native.FIRST_INSTANCE if first_instance else 0)
                  | (_native.INBOUND_ONLY if inbound_only else 0) | (_native.OUTBOUND_ONLY if outbound_only else 0)
                  | (_native.CURRENT_USER_ONLY if current_user_only else 0)
                  | (_native.ALLOW_REMOTE if allow_remote else 0))
    for field, value in counts.items():
        if not isinstance(value, int) or not 0 <= value < 2**32:
            raise _errors.InvalidArgumentError(_errors.EINVAL, f"{field} must be an int in 0..2**32-1")
        setattr(opts, field, value)
    opts.linger_ms = _linger_ms(linger)
    if sddl is not None:
        sddl_raw = sddl.encode("utf-8")
        if b"\0" in sddl_raw:
            raise _errors.InvalidArgumentError(_errors.EINVAL, "sddl contains a NUL character")
        opts.sddl = sddl_raw


class Server(Pipe):
    """One server instance of a named pipe (``npipe_create``), IDLE until :meth:`connect`.

    More instances of the same name are more ``Server(name)`` objects (without ``first_instance``).

    Args:
        name: ``"foo"`` (Linux: the socket ``$TMPDIR/CoreFxPipe_foo``; Windows: ``\\\\.\\pipe\\foo``),
            a full ``\\\\.\\pipe\\foo``, or on Linux an absolute socket path.
        message: message mode (the client must open with ``message=True`` too).
        first_instance: fail with :class:`PipeExistsError` if the name exists.
        max_instances: 0 = unlimited, else 1..254 (:class:`PipeBusyError` beyond).
        inbound_only / outbound_only: the server only reads / only writes.
        current_user_only: only the current user may connect.
        allow_remote: accept remote clients (Windows only).
        in_buffer_size / out_buffer_size: OS buffer hints in bytes, 0 = 64 KiB.
        linger: seconds :meth:`close` keeps delivering accepted bytes (None = 1 s, 0 = discard).
        sddl: Windows security descriptor string.
    """

    _kind = "Server"

    def __init__(self, name: Name, *, message: bool = False, first_instance: bool = False,
                 max_instances: int = 0, inbound_only: bool = False, outbound_only: bool = False,
                 current_user_only: bool = False, allow_remote: bool = False, in_buffer_size: int = 0,
                 out_buffer_size: int = 0, linger: Optional[float] = None, sddl: Optional[str] = None) -> None:
        lib = _native.library()
        raw = _encode_name(name)
        opts = _native.ServerOptions()
        lib.npipe_server_options_init(ctypes.byref(opts))
        _fill_server_options(opts, message=message, first_instance=first_instance, inbound_only=inbound_only,
                             outbound_only=outbound_only, current_user_only=current_user_only,
                             allow_remote=allow_remote, linger=linger, sddl=sddl, max_instances=max_instances,
                             in_buffer_size=in_buffer_size, out_buffer_size=out_buffer_size)
        out = _native.npipe_t()
        _native.check(lib.npipe_create(raw, ctypes.byref(opts), ctypes.byref(out)))
        self._init(lib, out.value, raw.decode("utf-8", "surrogateescape"), message, linger)

    def connect(self, timeout: Optional[float] = None, *, blocking: bool = True) -> bool:
        """Wait for a client.

        Blocking (the default): wait up to ``timeout`` seconds (None = forever) and return True
        once a client is connected; uses the private poll of the blocking helpers.

        ``blocking=False`` (for pipes registered with a :class:`~npipe.Poll`): return True if a
        client is connected, False while waiting (a ``CONNECTED`` event follows; then call
        ``connect(blocking=False)`` again, which raises the failure if the attempt failed).

        Raises:
            PipeTimeoutError: no client within ``timeout``.
            PipeExistsError: blocking connect on a pipe registered with a user Poll.
        """
        handle = self.handle

        def attempt() -> Optional[bool]:
            rc = self._lib.npipe_connect(handle)
            if rc == _errors.EAGAIN:
                return None
            if rc < 0:
                raise self._fail(rc)
            return True

        if not blocking:
            return bool(attempt())
        # A connect that ended makes READABLE and WRITABLE hold (a failed one both), and a
        # connected duplex or outbound server has room to write.
        return self._until(attempt, _native.READABLE | _native.WRITABLE, timeout, "connect")

    def disconnect(self) -> None:
        """Drop the client (unread data is discarded) and make the instance IDLE again; call
        :meth:`connect` to wait for the next client."""
        rc = self._lib.npipe_disconnect(self.handle)
        if rc < 0:
            raise self._fail(rc)


class Client(Pipe):
    """A client end (``npipe_open``), connected when the constructor returns (unless
    ``blocking=False``).

    Args:
        name: as for :class:`Server`.
        timeout: keep retrying while the server is busy or does not exist yet: 0 = fail at once
            (:class:`PipeBusyError` / :class:`PipeNotFoundError`), None = forever, else seconds
            (then :class:`PipeTimeoutError`).
        message: read in message mode.
        inbound_only / outbound_only: open for reading only / writing only.
        current_user_only: refuse a server owned by another user (:class:`PipeAccessError`).
        linger: as for :class:`Server`.
        blocking: False returns at once with a client that is still connecting
            (``NPIPE_NONBLOCK_OPEN``): register it with a :class:`~npipe.Poll`, which drives the
            attempts (no thread waits) until a ``CONNECTED`` event; then :meth:`take_error` is None
            or why the open failed (``timeout`` counts from the constructor). Only a bad name or
            option raises here; I/O raises :class:`WouldBlockError` while it connects.

    The blocking open leaves the client free to be registered with a :class:`~npipe.Poll`
    afterwards: it waits with the library's blocking ``npipe_open`` (no spinning: retries 1 ms
    apart, doubling up to 50 ms), in slices so Ctrl-C is honoured.
    """

    _kind = "Client"

    def __init__(self, name: Name, *, timeout: Optional[float] = 0.0, message: bool = False,
                 inbound_only: bool = False, outbound_only: bool = False, current_user_only: bool = False,
                 linger: Optional[float] = None, blocking: bool = True) -> None:
        lib = _native.library()
        raw = _encode_name(name)
        opts = _native.ClientOptions()
        lib.npipe_client_options_init(ctypes.byref(opts))
        opts.flags = ((_native.MESSAGE if message else 0) | (_native.INBOUND_ONLY if inbound_only else 0)
                      | (_native.OUTBOUND_ONLY if outbound_only else 0)
                      | (_native.CURRENT_USER_ONLY if current_user_only else 0))
        opts.linger_ms = _linger_ms(linger)
        out = _native.npipe_t()
        if not blocking:
            opts.flags |= _native.NONBLOCK_OPEN
            opts.timeout_ms = timeout_ms(timeout)
            _native.check(lib.npipe_open(raw, ctypes.byref(opts), ctypes.byref(out)))
        else:
            _open_blocking(lib, raw, opts, out, timeout)
        self._init(lib, out.value, raw.decode("utf-8", "surrogateescape"), message, linger)


def _open_blocking(lib: ctypes.CDLL, raw: bytes, opts: _native.ClientOptions, out: Any,
                   timeout: Optional[float]) -> None:
    """``npipe_open`` until ``timeout`` (None = forever), handed to the library in slices so Ctrl-C
    is honoured between them. The failure names the caller's timeout, not the last slice."""
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    while True:
        left = _SLICE_S if deadline is None else min(_SLICE_S, deadline - time.monotonic())
        # At the deadline one last attempt (timeout 0) answers with the plain reason: absent or busy.
        opts.timeout_ms = timeout_ms(left) if left > 0 else 0
        rc = lib.npipe_open(raw, ctypes.byref(opts), ctypes.byref(out))
        if rc >= 0:
            return
        if rc == _errors.ETIMEDOUT and opts.timeout_ms > 0:
            continue  # a slice passed (the deadline, if any, is checked by the next round)
        err = _native.last_error(rc)
        if rc in (_errors.ENOENT, _errors.EBUSY) and (timeout is None or timeout > 0):
            raise _errors.PipeTimeoutError(_errors.ETIMEDOUT, f"{err.message}; gave up after {timeout} s",
                                           os_error=err.os_error)
        raise err


def create(name: Name, **options: Any) -> Server:
    """Create a server instance: ``npipe.create(name, **options)`` is ``npipe.Server(name, **options)``."""
    return Server(name, **options)


def open(name: Name, timeout: Optional[float] = 0.0, **options: Any) -> Client:  # noqa: A001 (like io.open)
    """Open a client end: ``npipe.open(name, timeout=...)`` is ``npipe.Client(name, timeout=...)``
    (``blocking=False`` returns at once, still connecting)."""
    return Client(name, timeout=timeout, **options)


def from_raw_handle(raw: Any, *, message: bool = False) -> Pipe:
    """Adopt an OS handle: a connected ``AF_UNIX`` stream socket on Linux (an int descriptor or a
    :class:`socket.socket`, which is detached on success), a pipe handle opened for overlapped I/O
    on Windows. On success the pipe owns it; on failure the caller keeps it."""
    lib = _native.library()
    sock = raw if hasattr(raw, "detach") and hasattr(raw, "fileno") else None
    fd = sock.fileno() if sock is not None else raw
    if not isinstance(fd, int):
        raise TypeError(f"expected an int OS handle or a socket, not {type(raw).__name__}")
    out = _native.npipe_t()
    _native.check(lib.npipe_from_raw_handle(fd, _native.MESSAGE if message else 0, ctypes.byref(out)))
    if sock is not None:
        sock.detach()
    return Pipe._adopt(lib, out.value, None, message, None)


def resolve_name(name: Name) -> str:
    """The OS name ``name`` maps to: on Linux the socket path (``$TMPDIR/CoreFxPipe_<name>``), on
    Windows ``\\\\.\\pipe\\<name>``. Shows why two processes with different ``TMPDIR`` s miss each other."""
    lib = _native.library()
    raw = _encode_name(name)
    # Ask for the length first (buf NULL, len 0); a library that answers that with
    # NPIPE_ENAMETOOLONG instead gets a buffer large enough for any OS name.
    size = 0
    for _ in range(3):
        buf = ctypes.create_string_buffer(size) if size else None
        rc = lib.npipe_resolve_name(raw, buf, size)
        if rc >= 0 and buf is not None:
            return buf.value.decode("utf-8", "surrogateescape")
        if rc >= 0:
            size = rc + 1
        elif rc == _errors.ENAMETOOLONG and size < 65536:
            size = 65536  # the name itself may be too long: then the next call says so
        else:
            raise _native.last_error(rc)
    raise _native.last_error(_errors.ENAMETOOLONG)
