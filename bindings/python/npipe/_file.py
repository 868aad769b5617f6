"""File objects over a pipe: :meth:`Pipe.makefile` and the raw :class:`PipeIO` under it."""
from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Optional

from ._brief import BriefABCMeta

if TYPE_CHECKING:
    from ._pipe import Pipe

__all__ = ["PipeIO", "makefile"]


class PipeIO(io.RawIOBase, metaclass=BriefABCMeta):
    """A blocking raw stream over a connected pipe (an :class:`io.RawIOBase`), for
    :class:`io.BufferedReader` / :class:`io.BufferedWriter` / :class:`io.TextIOWrapper`.

    ``readinto`` blocks until some bytes arrive and returns their count, 0 at the end of the
    connection (never ``None``: the stream is blocking); ``write`` blocks until the library has
    taken every byte; ``flush`` waits until the OS has them. ``timeout`` (seconds, None =
    forever) bounds each of these calls; a :class:`PipeTimeoutError` names the call (``read``,
    ``write``, ``flush``) and that timeout.

    Closing the stream flushes it and leaves the pipe open (like :meth:`socket.socket.makefile`);
    close the pipe yourself. Made by :meth:`Pipe.makefile`.
    """

    def __init__(self, pipe: "Pipe", mode: str = "rwb", timeout: Optional[float] = None) -> None:
        super().__init__()
        if not set(mode) <= set("rwb") or not mode.strip("b"):
            raise ValueError(f"invalid mode {mode!r} (expected 'rb', 'wb' or 'rwb')")
        self._pipe = pipe
        self._reading = "r" in mode
        self._writing = "w" in mode
        self.timeout = timeout
        self.mode = mode

    @property
    def pipe(self) -> "Pipe":
        """The pipe this stream reads and writes."""
        return self._pipe

    @property
    def name(self) -> Optional[str]:
        """The pipe's name."""
        return self._pipe.name

    def readable(self) -> bool:
        """True for a stream opened with ``r`` in its mode."""
        self._checkClosed()  # type: ignore[attr-defined]
        return self._reading

    def writable(self) -> bool:
        """True for a stream opened with ``w`` in its mode."""
        self._checkClosed()  # type: ignore[attr-defined]
        return self._writing

    def readinto(self, buffer: Any) -> int:
        """Block until bytes arrive and read them into ``buffer``; 0 at the end of the connection."""
        self._checkClosed()  # type: ignore[attr-defined]
        if not self._reading:
            raise io.UnsupportedOperation("not readable")
        return self._pipe._recv_into(buffer, 0, self.timeout, "read")

    def write(self, data: Any) -> int:
        """Block until the library has taken all of ``data``; returns its length."""
        self._checkClosed()  # type: ignore[attr-defined]
        if not self._writing:
            raise io.UnsupportedOperation("not writable")
        if type(data) is bytes:
            self._pipe._sendall(data, self.timeout, "write")
            return len(data)
        with memoryview(data) as view:
            self._pipe._sendall(view, self.timeout, "write")
            return view.nbytes

    def flush(self) -> None:
        """Wait until the OS has every byte written so far (not until the peer read them:
        that is :meth:`Pipe.drain`)."""
        if self.closed or not self._writing or self._pipe.closed:
            return
        self._pipe.flush(blocking=True, timeout=self.timeout)

    def close(self) -> None:
        """Flush (for at most ``timeout``) and close the stream; the pipe stays open."""
        if self.closed:
            return
        try:
            self.flush()
        finally:
            super().close()


def makefile(pipe: "Pipe", mode: str = "r", buffering: Optional[int] = None, *, encoding: Optional[str] = None,
             errors: Optional[str] = None, newline: Optional[str] = None, timeout: Optional[float] = None) -> Any:
    """:meth:`Pipe.makefile`."""
    if not set(mode) <= {"r", "w", "b"} or not mode.strip("b") or len(set(mode)) != len(mode):
        raise ValueError(f"invalid mode {mode!r} (expected 'r', 'w', 'rw', with or without 'b')")
    reading, writing, binary = "r" in mode, "w" in mode, "b" in mode
    raw = PipeIO(pipe, ("r" if reading else "") + ("w" if writing else "") + "b", timeout)
    if buffering is None or buffering < 0:
        buffering = io.DEFAULT_BUFFER_SIZE
    if buffering == 0:
        if not binary:
            raise ValueError("unbuffered streams must be binary")
        return raw
    buffered: io.BufferedIOBase
    if reading and writing:
        buffered = io.BufferedRWPair(raw, raw, buffering)
    elif reading:
        buffered = io.BufferedReader(raw, buffering)
    else:
        buffered = io.BufferedWriter(raw, buffering)
    if binary:
        return buffered
    text = io.TextIOWrapper(buffered, encoding, errors, newline, line_buffering=False)
    text.mode = mode  # type: ignore[misc]
    return text
