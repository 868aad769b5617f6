"""npipe: named pipes for Python (Windows named pipes, Linux AF_UNIX sockets), a ctypes binding of
libnpipe / npipe.dll.

Three ways to use a pipe, one per kind of program:

* **Blocking, like a socket** (scripts, threads): :class:`Server` (``connect(timeout)``),
  :func:`open` / :class:`Client`, :class:`Listener` (``accept(timeout)``), then
  ``recv(n)`` / ``recv_into(buf)`` / ``sendall(data)`` / ``send`` and ``makefile()`` for a file
  object (``readline``, ``for line in f``). Every blocking call takes ``timeout`` seconds (None =
  forever) and raises :class:`PipeTimeoutError` naming that call and that timeout. ``sendall``
  returns once the library took the bytes; ``flush(blocking=True)`` and ``close()`` wait until
  the OS has them, ``drain()`` until the peer read them.
* **asyncio**: :mod:`npipe.asyncio` -- ``start_server`` / ``open_connection`` give
  ``asyncio.StreamReader`` / ``StreamWriter`` on any event loop (Windows' Proactor included).
* **Non-blocking, with your own event loop**: register pipes with a :class:`Poll` (readiness
  events in the manner of Rust mio), then ``read`` / ``readinto`` / ``write`` until
  :class:`WouldBlockError`. ``read()`` never waits: it is the event-loop call, unlike a file's.

A pipe is bound for life to the first poll it waits on, so one pipe uses either the blocking
calls (and makefile) or your :class:`Poll`, not both (:class:`PipeExistsError` says so).

::

    import npipe, threading

    with npipe.Server("demo") as server:
        t = threading.Thread(target=lambda: server.connect(timeout=5) and server.sendall(server.recv(timeout=5)))
        t.start()
        with npipe.open("demo", timeout=5) as client:
            client.sendall(b"hello")
            print(client.recv(timeout=5))   # b'hello'
        t.join()

Errors are :class:`NpipeError` subclasses that also derive from the matching built-in
(``except FileNotFoundError`` / ``TimeoutError`` / ``BrokenPipeError`` work). The shared library is
found through ``$NPIPE_LIBRARY``, a copy inside this package (platform wheels carry one), a source
checkout's ``build/native``, or the system's library path (see :mod:`npipe._native`).
"""
from __future__ import annotations

from . import _native
from ._errors import (
    BadHandleError,
    CanceledError,
    InvalidArgumentError,
    LibraryLoadError,
    MessageTooLargeError,
    NameTooLongError,
    NotConnectedError,
    NotSupportedError,
    NpipeError,
    OutOfMemoryError,
    PipeAccessError,
    PipeBrokenError,
    PipeBusyError,
    PipeExistsError,
    PipeNotFoundError,
    PipeOSError,
    PipeTimeoutError,
    WouldBlockError,
)
from ._file import PipeIO
from ._listener import Listener
from ._pipe import (
    MSG_EMPTY,
    MSG_PARTIAL,
    Client,
    MsgRead,
    Peer,
    Pipe,
    PipeInfo,
    Server,
    create,
    from_raw_handle,
    open,
    resolve_name,
)
from ._poll import (
    CONNECTED,
    ERROR,
    LEVEL,
    READ_CLOSED,
    READABLE,
    WAKE,
    WRITABLE,
    WRITE_CLOSED,
    Event,
    EventFlag,
    Poll,
)

#: The version of this Python package (it needs a library of the same major version).
__version__ = "1.1.0"

__all__ = [
    "__version__", "library_version", "library_path",
    "Poll", "Event", "EventFlag", "READABLE", "WRITABLE", "ERROR", "READ_CLOSED", "WRITE_CLOSED", "WAKE",
    "CONNECTED", "LEVEL",
    "Pipe", "Server", "Client", "Listener", "PipeIO", "PipeInfo", "Peer", "MsgRead", "MSG_PARTIAL", "MSG_EMPTY",
    "create", "open", "from_raw_handle", "resolve_name",
    "NpipeError", "WouldBlockError", "InvalidArgumentError", "BadHandleError", "PipeNotFoundError",
    "PipeBusyError", "PipeExistsError", "PipeAccessError", "PipeBrokenError", "NotConnectedError",
    "PipeTimeoutError", "OutOfMemoryError", "NameTooLongError", "MessageTooLargeError", "NotSupportedError",
    "CanceledError", "PipeOSError", "LibraryLoadError",
]


def library_version() -> str:
    """The loaded library's version string, e.g. ``"1.1.0"`` (loads the library on first use)."""
    return (_native.library().npipe_version_string() or b"").decode("ascii", "replace")


def library_path() -> str:
    """Where the npipe shared library was loaded from (loads it on first use)."""
    return _native.library_path()
