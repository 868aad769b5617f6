"""The listener (``npipe_listen`` / ``npipe_accept``): keeps instances of a name waiting for clients
and hands out connected :class:`Server` pipes, so no client sees "busy" because the server was busy."""
from __future__ import annotations

import ctypes
import time
import weakref
from typing import TYPE_CHECKING, Iterator, Optional

from . import _errors, _native
from ._pipe import Name, Pipe, Server, _encode_name, _fill_server_options, _release, _State, _timeout_error
from ._poll import _SLICE_S, timeout_ms

if TYPE_CHECKING:
    from ._poll import Poll

__all__ = ["Listener"]


class Listener:
    """A listener of a pipe name: clients may open the name as soon as it is constructed, and
    :meth:`accept` hands out their connected :class:`Server` pipes.

    **Blocking** (for scripts and thread-per-client servers): ``accept(timeout=...)`` waits with
    ``npipe_wait``, and ``for pipe in listener:`` accepts until the listener is closed (from
    another thread, say). The pipes it returns use the blocking helpers (``recv``, ``sendall``,
    ...); they cannot be registered with a :class:`~npipe.Poll`.

    **With a Poll**: register the listener (``READABLE`` means a client waits to be accepted;
    edge-triggered unless ``LEVEL``: accept until :class:`WouldBlockError`), call
    ``accept(blocking=False)``, and register each pipe with the *same* poll (any other poll
    raises :class:`PipeExistsError`). A listener is bound for life to the first poll it waits on,
    like a pipe.

    Closing the listener closes the instances still waiting and the clients not accepted yet (they
    see the end of the connection); pipes already accepted are not affected.

    Args:
        name, message, first_instance, inbound_only, outbound_only, current_user_only, allow_remote,
        in_buffer_size, out_buffer_size, sddl: as for :class:`Server`, for every instance.
        linger: given to every accepted pipe, as for :class:`Server`.
        spare_instances: instances kept waiting for clients when idle (Windows): 0 = 4, else 1..64.
        max_pending: connected pipes not yet accepted: 0 = 128, else 1..4096; beyond that clients
            wait (and see :class:`PipeBusyError` once their open timeout passes).
    """

    _kind = "Listener"

    # The lifetime rules are a pipe's: the same handle bookkeeping, closed-handle errors and
    # background-failure query.
    closed = Pipe.closed
    handle = Pipe.handle
    name = Pipe.name
    poll = Pipe.poll
    _fail = Pipe._fail
    _query = Pipe._query
    take_error = Pipe.take_error
    info = Pipe.info  # is_listener, waiting_instances and pending_accepts are the listener's figures
    __enter__ = Pipe.__enter__
    __exit__ = Pipe.__exit__

    def __init__(self, name: Name, *, message: bool = False, first_instance: bool = False,
                 inbound_only: bool = False, outbound_only: bool = False, current_user_only: bool = False,
                 allow_remote: bool = False, in_buffer_size: int = 0, out_buffer_size: int = 0,
                 linger: Optional[float] = None, spare_instances: int = 0, max_pending: int = 0,
                 sddl: Optional[str] = None) -> None:
        lib = _native.library()
        raw = _encode_name(name)
        opts = _native.ListenerOptions()
        lib.npipe_listener_options_init(ctypes.byref(opts))
        _fill_server_options(opts, message=message, first_instance=first_instance, inbound_only=inbound_only,
                             outbound_only=outbound_only, current_user_only=current_user_only,
                             allow_remote=allow_remote, linger=linger, sddl=sddl, in_buffer_size=in_buffer_size,
                             out_buffer_size=out_buffer_size, spare_instances=spare_instances,
                             max_pending=max_pending)
        out = _native.npipe_t()
        _native.check(lib.npipe_listen(raw, ctypes.byref(opts), ctypes.byref(out)))
        self._lib = lib
        self._state = _State(out.value)
        self._finalizer = weakref.finalize(self, _release, lib, self._state)
        self._name = raw.decode("utf-8", "surrogateescape")
        self._message = message
        self._linger = linger
        self._poll: Optional["Poll"] = None  # set by Poll.register

    def close(self) -> None:
        """Close the listener. Idempotent; never blocks. A thread blocked in :meth:`accept` raises
        :class:`ValueError` (a loop over the listener just ends)."""
        self._finalizer()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"handle={self._state.handle:#x}"
        return f"<npipe.Listener name={self._name!r} {state}>"

    def accept(self, timeout: Optional[float] = None, *, blocking: bool = True) -> Server:
        """Return the next connected client's pipe (a :class:`Server`, connected).

        Blocking (the default): wait up to ``timeout`` seconds (None = forever, 0 = only look).
        ``blocking=False`` (for a listener registered with a Poll): return a pipe if one waits.

        Raises:
            PipeTimeoutError: no client within ``timeout`` (the message names it).
            WouldBlockError: ``blocking=False`` and no client waits.
            PipeExistsError: blocking accept on a listener registered with a Poll.
            ValueError: the listener is closed (also by another thread during the wait).
        """
        handle = self.handle
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        out = _native.npipe_t()
        while True:
            rc = self._lib.npipe_accept(handle, ctypes.byref(out))
            if rc == _errors.OK:
                return Server._adopt(self._lib, out.value, self._name, self._message, self._linger)
            if rc != _errors.EAGAIN or not blocking:
                raise self._fail(rc)
            self._wait_readable(handle, deadline, timeout)

    def _wait_readable(self, handle: int, deadline: Optional[float], timeout: Optional[float]) -> None:
        """One ``npipe_wait`` for a client to accept, at most one slice (so Ctrl-C is honoured
        between slices); raises the caller's timeout once ``deadline`` passed."""
        if self._poll is not None:
            raise _errors.PipeExistsError(
                _errors.EEXIST,
                "the listener is registered with a Poll (it is bound to it for life), so accept cannot block "
                "on it: wait for READABLE on that Poll and call accept(blocking=False)",
            )
        left = _SLICE_S if deadline is None else min(_SLICE_S, deadline - time.monotonic())
        if left <= 0 and timeout != 0:
            raise _timeout_error("accept", timeout)
        self._state.waited = True
        rc = self._lib.npipe_wait(handle, _native.READABLE, timeout_ms(left))
        if rc < 0:
            raise self._fail(rc)
        if rc == 0 and timeout == 0:
            raise _timeout_error("accept", timeout)

    def __iter__(self) -> Iterator[Server]:
        """Accept clients one by one until the listener is closed (then the loop ends quietly)."""
        while True:
            try:
                pipe = self.accept()
            except ValueError:
                if self.closed:
                    return
                raise
            yield pipe

