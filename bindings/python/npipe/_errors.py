"""Status codes of the npipe C API and the exceptions they become.

Every failing call raises a subclass of :class:`NpipeError` (itself an :class:`OSError`) that
carries the library's status ``code``, its ``name`` (``"NPIPE_ENOENT"``), the raw OS error
behind it (``os_error``: ``errno`` on Linux, ``GetLastError()`` on Windows) and the specific
``message`` from ``npipe_last_error_message()``. Where Python has a matching built-in exception
the subclass derives from it too, so ``except FileNotFoundError`` or ``except TimeoutError``
work as they would for sockets and files.
"""
from __future__ import annotations

import errno as _errno
from typing import Dict, Optional, Tuple, Type

from ._brief import BriefType

__all__ = [
    "OK", "EAGAIN", "EINVAL", "EBADF", "ENOENT", "EBUSY", "EEXIST", "EACCES", "EPIPE", "ENOTCONN",
    "ETIMEDOUT", "ENOMEM", "ENAMETOOLONG", "EMSGSIZE", "ENOTSUP", "ECANCELED", "EIO",
    "NpipeError", "WouldBlockError", "InvalidArgumentError", "BadHandleError", "PipeNotFoundError",
    "PipeBusyError", "PipeExistsError", "PipeAccessError", "PipeBrokenError", "NotConnectedError",
    "PipeTimeoutError", "OutOfMemoryError", "NameTooLongError", "MessageTooLargeError",
    "NotSupportedError", "CanceledError", "PipeOSError", "LibraryLoadError", "error_for",
]

# The numbers are part of the C ABI (include/npipe.h); they never change.
OK = 0
EAGAIN = -1
EINVAL = -2
EBADF = -3
ENOENT = -4
EBUSY = -5
EEXIST = -6
EACCES = -7
EPIPE = -8
ENOTCONN = -9
ETIMEDOUT = -10
ENOMEM = -11
ENAMETOOLONG = -12
EMSGSIZE = -13
ENOTSUP = -14
ECANCELED = -15
EIO = -99


class LibraryLoadError(OSError, metaclass=BriefType):
    """The npipe shared library could not be found, loaded, or has the wrong major version."""


class NpipeError(OSError, metaclass=BriefType):
    """A failed npipe call.

    Attributes:
        code: the negative ``NPIPE_E*`` status the C function returned.
        name: its symbolic name, e.g. ``"NPIPE_ENOENT"`` (``"NPIPE_EUNKNOWN"`` for codes newer
            than this binding).
        os_error: the raw OS error behind the failure (``errno`` / ``GetLastError()``), 0 if none.
        message: the library's specific explanation (``npipe_last_error_message()``), read right
            after the failing call.

    ``errno`` is set to the closest POSIX ``errno`` value and ``strerror`` to ``message``, as for
    any ``OSError``.
    """

    code: int
    name: str
    os_error: int
    message: str

    def __init__(self, code: int, message: str, *, name: Optional[str] = None, os_error: int = 0) -> None:
        """The error for status ``code`` with the library's ``message`` (the binding builds
        these; ``error_for(code, ...)`` picks the subclass)."""
        info = _CODES.get(code)
        super().__init__(info[1] if info else _errno.EIO, message)
        self.code = code
        self.name = name if name is not None else (info[0] if info else "NPIPE_EUNKNOWN")
        self.os_error = os_error
        self.message = message

    def __str__(self) -> str:
        """``message (NPIPE_ENAME, os error N)``."""
        text = f"{self.message} ({self.name}"
        if self.os_error:
            text += f", os error {self.os_error}"
        return text + ")"

    def __reduce__(self):  # type: ignore[override]
        """Pickles with ``code``, ``message``, ``name`` and ``os_error`` (across processes)."""
        return (_rebuild, (type(self), self.code, self.message, self.name, self.os_error))


def _rebuild(cls: Type[NpipeError], code: int, message: str, name: str, os_error: int) -> NpipeError:
    return cls(code, message, name=name, os_error=os_error)


class WouldBlockError(NpipeError, BlockingIOError):
    """``NPIPE_EAGAIN``: the operation would block; wait for the matching readiness event."""


class InvalidArgumentError(NpipeError, ValueError):
    """``NPIPE_EINVAL``: an invalid argument (bad name, flags, option or size)."""


class BadHandleError(NpipeError):
    """``NPIPE_EBADF``: not a live handle of the expected kind."""


class PipeNotFoundError(NpipeError, FileNotFoundError):
    """``NPIPE_ENOENT``: no pipe of that name, or (re/de)registering a pipe that is not registered."""


class PipeBusyError(NpipeError):
    """``NPIPE_EBUSY``: all instances busy, another thread already waits on the poll, or the wake set is full."""


class PipeExistsError(NpipeError, FileExistsError):
    """``NPIPE_EEXIST``: the name is taken (``first_instance``), or the pipe is bound to another poll."""


class PipeAccessError(NpipeError, PermissionError):
    """``NPIPE_EACCES``: access denied (security, current-user check, wrong direction)."""


class PipeBrokenError(NpipeError, BrokenPipeError):
    """``NPIPE_EPIPE``: the peer is gone."""


class NotConnectedError(NpipeError, ConnectionError):
    """``NPIPE_ENOTCONN``: a server instance without a connected client."""


class PipeTimeoutError(NpipeError, TimeoutError):
    """``NPIPE_ETIMEDOUT``: the deadline passed (also raised by the blocking helpers' timeouts)."""


class OutOfMemoryError(NpipeError, MemoryError):
    """``NPIPE_ENOMEM``: the library ran out of memory."""


class NameTooLongError(NpipeError, ValueError):
    """``NPIPE_ENAMETOOLONG``: the pipe name is too long for the platform."""


class MessageTooLargeError(NpipeError, ValueError):
    """``NPIPE_EMSGSIZE``: a message larger than 16 MiB (message mode)."""


class NotSupportedError(NpipeError):
    """``NPIPE_ENOTSUP``: not supported on this platform or in this mode."""


class CanceledError(NpipeError):
    """``NPIPE_ECANCELED``: the pipe's poll was closed, so the pipe can make no more progress."""


class PipeOSError(NpipeError):
    """``NPIPE_EIO``: any other OS failure; ``os_error`` holds the OS's own code."""


# code -> (name, closest errno, class)
_CODES: Dict[int, Tuple[str, int, Type[NpipeError]]] = {
    EAGAIN: ("NPIPE_EAGAIN", _errno.EAGAIN, WouldBlockError),
    EINVAL: ("NPIPE_EINVAL", _errno.EINVAL, InvalidArgumentError),
    EBADF: ("NPIPE_EBADF", _errno.EBADF, BadHandleError),
    ENOENT: ("NPIPE_ENOENT", _errno.ENOENT, PipeNotFoundError),
    EBUSY: ("NPIPE_EBUSY", _errno.EBUSY, PipeBusyError),
    EEXIST: ("NPIPE_EEXIST", _errno.EEXIST, PipeExistsError),
    EACCES: ("NPIPE_EACCES", _errno.EACCES, PipeAccessError),
    EPIPE: ("NPIPE_EPIPE", _errno.EPIPE, PipeBrokenError),
    ENOTCONN: ("NPIPE_ENOTCONN", _errno.ENOTCONN, NotConnectedError),
    ETIMEDOUT: ("NPIPE_ETIMEDOUT", _errno.ETIMEDOUT, PipeTimeoutError),
    ENOMEM: ("NPIPE_ENOMEM", _errno.ENOMEM, OutOfMemoryError),
    ENAMETOOLONG: ("NPIPE_ENAMETOOLONG", _errno.ENAMETOOLONG, NameTooLongError),
    EMSGSIZE: ("NPIPE_EMSGSIZE", _errno.EMSGSIZE, MessageTooLargeError),
    ENOTSUP: ("NPIPE_ENOTSUP", getattr(_errno, "ENOTSUP", _errno.EOPNOTSUPP), NotSupportedError),
    ECANCELED: ("NPIPE_ECANCELED", getattr(_errno, "ECANCELED", _errno.EIO), CanceledError),
    EIO: ("NPIPE_EIO", _errno.EIO, PipeOSError),
}


def error_class(code: int) -> Type[NpipeError]:
    """The exception class for a status code: the generic :class:`NpipeError` for unknown codes."""
    info = _CODES.get(code)
    return info[2] if info else NpipeError


def error_for(code: int, message: str, *, name: Optional[str] = None, os_error: int = 0) -> NpipeError:
    """Build (not raise) the exception for a negative status ``code``."""
    return error_class(code)(code, message, name=name, os_error=os_error)
