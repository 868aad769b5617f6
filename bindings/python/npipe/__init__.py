"""npipe: non-blocking named pipes for Python (ctypes binding of libnpipe / npipe.dll).

A readiness model in the manner of Rust mio: register pipes with a :class:`Poll`, wait for
``READABLE`` / ``WRITABLE`` events, then read or write until :class:`WouldBlockError`. For
scripts, the blocking helpers (:meth:`Server.connect`, :meth:`Pipe.recv`, :meth:`Pipe.sendall`,
:meth:`Pipe.recv_msg`) work without a poll of your own::

    import npipe, threading

    with npipe.Server("demo") as server:
        t = threading.Thread(target=lambda: server.connect(timeout=5) and server.sendall(server.recv(timeout=5)))
        t.start()
        with npipe.open("demo", timeout=5) as client:
            client.sendall(b"hello")
            print(client.recv(timeout=5))   # b'hello'
        t.join()

The shared library is found through ``$NPIPE_LIBRARY``, a copy inside this package, a source
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
