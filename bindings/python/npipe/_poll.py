"""The poll (reactor): register pipes, wait for readiness events, wake a waiting thread."""
from __future__ import annotations

import ctypes
import enum
import math
import threading
import time
import weakref
from typing import TYPE_CHECKING, List, Optional

from . import _errors, _native
from ._brief import BriefEnumMeta

if TYPE_CHECKING:
    from ._pipe import Pipe

__all__ = ["Poll", "Event", "EventFlag", "READABLE", "WRITABLE", "ERROR", "READ_CLOSED", "WRITE_CLOSED",
           "WAKE", "CONNECTED", "LEVEL"]

# Blocking waits are cut into slices this long so Ctrl-C (KeyboardInterrupt) is honoured promptly;
# the slicing is invisible otherwise (a wait only returns early with events).
_SLICE_S = 0.25
_INT32_MAX = 2**31 - 1


class EventFlag(enum.IntFlag, metaclass=BriefEnumMeta):
    """Readiness flags: interests for :meth:`Poll.register` and the flags of an :class:`Event`."""

    READABLE = _native.READABLE
    WRITABLE = _native.WRITABLE
    ERROR = _native.ERROR
    READ_CLOSED = _native.READ_CLOSED
    WRITE_CLOSED = _native.WRITE_CLOSED
    WAKE = _native.WAKE
    CONNECTED = _native.CONNECTED
    LEVEL = _native.LEVEL


READABLE = EventFlag.READABLE
WRITABLE = EventFlag.WRITABLE
ERROR = EventFlag.ERROR
READ_CLOSED = EventFlag.READ_CLOSED
WRITE_CLOSED = EventFlag.WRITE_CLOSED
WAKE = EventFlag.WAKE
CONNECTED = EventFlag.CONNECTED
LEVEL = EventFlag.LEVEL


class Event:
    """One readiness event: the ``token`` given at registration (or to :meth:`Poll.wake`) and all
    the ``flags`` of that pipe at once."""

    __slots__ = ("token", "flags")
    token: int
    flags: EventFlag

    def __init__(self, token: int, flags: int) -> None:
        self.token = token
        self.flags = EventFlag(flags)

    @property
    def readable(self) -> bool:
        """Data (or EOF) can be read: read until :class:`WouldBlockError`."""
        return bool(self.flags & EventFlag.READABLE)

    @property
    def writable(self) -> bool:
        """There is room to write (or a pending :meth:`Pipe.flush` completed)."""
        return bool(self.flags & EventFlag.WRITABLE)

    @property
    def error(self) -> bool:
        """A background operation failed: :meth:`Pipe.take_error` says which."""
        return bool(self.flags & EventFlag.ERROR)

    @property
    def read_closed(self) -> bool:
        """The peer will send nothing more (EOF is, or will be, readable)."""
        return bool(self.flags & EventFlag.READ_CLOSED)

    @property
    def write_closed(self) -> bool:
        """Writes can no longer reach the peer."""
        return bool(self.flags & EventFlag.WRITE_CLOSED)

    @property
    def wake(self) -> bool:
        """The event comes from :meth:`Poll.wake`."""
        return bool(self.flags & EventFlag.WAKE)

    @property
    def connected(self) -> bool:
        """A server's connect finished: call :meth:`Server.connect` (non-blocking) or :meth:`Pipe.take_error`."""
        return bool(self.flags & EventFlag.CONNECTED)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (self.token, int(self.flags)) == (other.token, int(other.flags))

    def __hash__(self) -> int:
        return hash((self.token, int(self.flags)))

    def __repr__(self) -> str:
        return f"Event(token={self.token}, flags={self.flags!r})"


def _close_poll(lib: ctypes.CDLL, handle: int) -> None:
    lib.npipe_poll_close(handle)


def check_u64(value: int, what: str) -> int:
    if not isinstance(value, int) or not 0 <= value < 2**64:
        raise _errors.InvalidArgumentError(_errors.EINVAL, f"{what} must be an int in 0..2**64-1, not {value!r}")
    return value


def check_u32(value: int, what: str) -> int:
    if not isinstance(value, int) or not 0 <= value < 2**32:
        raise _errors.InvalidArgumentError(_errors.EINVAL, f"{what} must be an int in 0..2**32-1, not {value!r}")
    return value


def timeout_ms(timeout: Optional[float]) -> int:
    """Seconds (None = forever) -> the C API's int32 milliseconds (-1 = forever), rounded up."""
    if timeout is None:
        return -1
    if timeout <= 0:
        return 0
    return min(_INT32_MAX, math.ceil(timeout * 1000))


class Poll:
    """A reactor: pipes registered with it report readiness :class:`Event` s through :meth:`wait`.

    The model is Rust mio's: register a pipe, wait, then read or write until
    :class:`WouldBlockError`. Events are edge-triggered unless ``LEVEL`` is in the interests.
    A pipe is bound for life to the first poll it is registered with.

    Use it as a context manager, or call :meth:`close`; an unreachable poll is closed by the
    garbage collector. Closing a poll stops every pipe registered with it (their calls raise
    :class:`CanceledError`). Only one thread may :meth:`wait` at a time; any thread may :meth:`wake`.

    Args:
        capacity: the most events one :meth:`wait` returns (more come at the next wait).
    """

    def __init__(self, capacity: int = 256) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, not {capacity!r}")
        self._lib = _native.library()
        out = _native.npipe_poll_t()
        _native.check(self._lib.npipe_poll_create(ctypes.byref(out)))
        self._handle = out.value
        self._capacity = capacity
        self._waiting = threading.Lock()  # wait() is sliced: keep "one waiter at a time" exact
        self._finalizer = weakref.finalize(self, _close_poll, self._lib, self._handle)

    # -- lifetime -------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return not self._finalizer.alive

    @property
    def handle(self) -> int:
        """The raw ``npipe_poll_t`` handle (for calling the C API directly)."""
        if not self._finalizer.alive:
            raise ValueError("operation on a closed Poll")
        return self._handle

    def close(self) -> None:
        """Close the poll. Idempotent. Pipes registered with it can make no more progress."""
        self._finalizer()

    def __enter__(self) -> "Poll":
        if self.closed:
            raise ValueError("operation on a closed Poll")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"handle={self._handle:#x}"
        return f"<npipe.Poll {state}>"

    def _fail(self, rc: int) -> BaseException:
        err = _native.last_error(rc)
        if rc == _errors.EBADF and self.closed:
            return ValueError("operation on a closed Poll")
        return err

    # -- registration ---------------------------------------------------------------------------
    def register(self, pipe: "Pipe", token: int, interests: int = READABLE | WRITABLE) -> None:
        """Register ``pipe``: its events will carry ``token``.

        ``interests`` is ``READABLE``, ``WRITABLE`` or both, optionally ``| LEVEL``. Buffered data
        and room to write are reported at once. ``ERROR``, ``READ_CLOSED``, ``WRITE_CLOSED`` and
        ``CONNECTED`` come whatever the interests.

        Raises:
            PipeExistsError: the pipe is already registered, is bound to another poll, or was
                used with the blocking helpers (which bound it to its private poll).
        """
        handle = self.handle
        ph = pipe.handle
        check_u64(token, "token")
        check_u32(int(interests), "interests")
        if pipe._state.waited:
            raise _errors.PipeExistsError(
                _errors.EEXIST,
                "the pipe was used with a blocking helper (connect/recv/sendall/recv_msg), which bound it for "
                "life to a private poll, so it cannot be registered with this Poll; register pipes before "
                "any blocking call, or use only the blocking helpers on them",
            )
        rc = self._lib.npipe_register(handle, ph, token, int(interests))
        if rc < 0:
            raise self._fail(rc)
        pipe._poll = self

    def modify(self, pipe: "Pipe", token: int, interests: int = READABLE | WRITABLE) -> None:
        """Change the token and interests of a registered pipe (re-evaluating its current state).

        Raises:
            PipeNotFoundError: the pipe is not registered.
            PipeExistsError: the pipe is registered with another poll.
        """
        handle = self.handle
        ph = pipe.handle
        check_u64(token, "token")
        check_u32(int(interests), "interests")
        rc = self._lib.npipe_reregister(handle, ph, token, int(interests))
        if rc < 0:
            raise self._fail(rc)

    def unregister(self, pipe: "Pipe") -> None:
        """Remove the registration: no later :meth:`wait` reports its token. The pipe stays bound
        to this poll (it can be registered here again, not with another poll).

        Raises:
            PipeNotFoundError: the pipe is not registered.
        """
        handle = self.handle
        rc = self._lib.npipe_deregister(handle, pipe.handle)
        if rc < 0:
            raise self._fail(rc)

    # -- waiting --------------------------------------------------------------------------------
    def wait(self, timeout: Optional[float] = None) -> List[Event]:
        """Wait up to ``timeout`` seconds (None = until there is an event) and return the events.

        Returns an empty list on timeout; ``timeout=0`` only collects what is ready now.

        Raises:
            PipeBusyError: another thread is already waiting on this poll.
        """
        handle = self.handle
        if not self._waiting.acquire(blocking=False):
            raise _errors.PipeBusyError(_errors.EBUSY, "another thread is already waiting on this poll")
        try:
            return self._wait(handle, timeout)
        finally:
            self._waiting.release()

    def _wait(self, handle: int, timeout: Optional[float]) -> List[Event]:
        cap = self._capacity
        events = (_native.EventStruct * cap)()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            if deadline is None:
                ms = timeout_ms(_SLICE_S)
            else:
                ms = timeout_ms(min(_SLICE_S, deadline - time.monotonic()))
            n = self._lib.npipe_poll_wait(handle, events, cap, ms)
            if n < 0:
                raise self._fail(n)
            if n > 0:
                return [Event(events[i].token, events[i].events) for i in range(n)]
            if deadline is not None and time.monotonic() >= deadline:
                return []

    def wake(self, token: int = 0) -> None:
        """Make the current or next :meth:`wait` return ``Event(token, WAKE)``. Thread-safe; wakes
        with one token coalesce.

        Raises:
            PipeBusyError: too many distinct tokens are pending already.
        """
        handle = self.handle
        check_u64(token, "token")
        rc = self._lib.npipe_poll_wake(handle, token)
        if rc < 0:
            raise self._fail(rc)
