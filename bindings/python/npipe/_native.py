"""Finds and loads the npipe shared library and declares every exported function for ctypes.

Search order (the first hit wins):

1. ``$NPIPE_LIBRARY`` -- a path to the library; if set, nothing else is tried.
2. A copy inside this package (``npipe/libnpipe.so.1`` or ``npipe/npipe.dll``), as placed there by
   ``NPIPE_BUNDLE_LIBRARY=... pip install`` (see the README).
3. The development build tree of a source checkout (``build/native`` at the repository root).
4. The system's search: the dynamic loader's path (``LD_LIBRARY_PATH``, ``ldconfig``) and
   :func:`ctypes.util.find_library`.

The loaded library must have the major version this binding was written for (1).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from ctypes import POINTER, c_char_p, c_int, c_int32, c_int64, c_size_t, c_ssize_t, c_uint32, c_uint64, c_void_p
from pathlib import Path
from typing import List, Optional

from . import _errors

__all__ = ["library", "library_path", "check", "last_error"]

# Built against include/npipe.h 1.1.0.
ABI_MAJOR = 1

# ---------------------------------------------------------------------------------------------
# Flags (include/npipe.h)
# ---------------------------------------------------------------------------------------------
READABLE = 0x01
WRITABLE = 0x02
ERROR = 0x04
READ_CLOSED = 0x08
WRITE_CLOSED = 0x10
WAKE = 0x20
CONNECTED = 0x40
LEVEL = 0x100

FIRST_INSTANCE = 0x01
MESSAGE = 0x02
INBOUND_ONLY = 0x04
OUTBOUND_ONLY = 0x08
ALLOW_REMOTE = 0x10
CURRENT_USER_ONLY = 0x20
NONBLOCK_OPEN = 0x40

MSG_PARTIAL = 0x1
MSG_EMPTY = 0x2

INFO_SERVER = 0x10000
INFO_CONNECTED = 0x20000
INFO_LISTENER = 0x40000

PEER_SAME_USER = 0x1

# ---------------------------------------------------------------------------------------------
# Structs (sizes checked below against the header's static_asserts)
# ---------------------------------------------------------------------------------------------
npipe_t = c_uint64
npipe_poll_t = c_uint64
intptr_t = c_ssize_t


class EventStruct(ctypes.Structure):
    """``npipe_event_t``."""

    _fields_ = [("token", c_uint64), ("events", c_uint32), ("reserved", c_uint32)]


class ServerOptions(ctypes.Structure):
    """``npipe_server_options_t``."""

    _fields_ = [
        ("size", c_uint32), ("flags", c_uint32), ("max_instances", c_uint32),
        ("in_buffer_size", c_uint32), ("out_buffer_size", c_uint32), ("linger_ms", c_int32),
        ("sddl", c_char_p),
    ]


class ClientOptions(ctypes.Structure):
    """``npipe_client_options_t``."""

    _fields_ = [("size", c_uint32), ("flags", c_uint32), ("timeout_ms", c_int32), ("linger_ms", c_int32)]


class InfoStruct(ctypes.Structure):
    """``npipe_info_t``."""

    _fields_ = [
        ("size", c_uint32), ("flags", c_uint32), ("in_buffer_size", c_uint32), ("out_buffer_size", c_uint32),
        ("max_instances", c_uint32), ("reserved", c_uint32), ("peer_pid", c_uint64), ("bytes_read", c_uint64),
        ("bytes_written", c_uint64), ("write_pending", c_uint64), ("read_available", c_uint64),
        ("peer_unread", c_uint64), ("waiting_instances", c_uint32), ("pending_accepts", c_uint32),
    ]


class ListenerOptions(ctypes.Structure):
    """``npipe_listener_options_t``."""

    _fields_ = [
        ("size", c_uint32), ("flags", c_uint32), ("in_buffer_size", c_uint32), ("out_buffer_size", c_uint32),
        ("linger_ms", c_int32), ("spare_instances", c_uint32), ("max_pending", c_uint32), ("reserved", c_uint32),
        ("sddl", c_char_p),
    ]


class PeerStruct(ctypes.Structure):
    """``npipe_peer_t``."""

    _fields_ = [
        ("size", c_uint32), ("flags", c_uint32), ("pid", c_uint64), ("uid", c_uint32), ("gid", c_uint32),
        ("sid", ctypes.c_char * 192),
    ]


class IoVec(ctypes.Structure):
    """``npipe_iovec_t``."""

    _fields_ = [("base", c_void_p), ("len", c_size_t)]


for _struct, _size in ((EventStruct, 16), (ServerOptions, 32), (ClientOptions, 16), (InfoStruct, 80),
                      (ListenerOptions, 40), (PeerStruct, 216)):
    assert ctypes.sizeof(_struct) == _size, f"{_struct.__name__} must be {_size} bytes"

# ---------------------------------------------------------------------------------------------
# Every exported function: name -> (restype, argtypes). Strings returned by the library are
# declared c_char_p, which copies them into a Python bytes object at once.
# ---------------------------------------------------------------------------------------------
_PROTOTYPES = {
    "npipe_version": (c_uint32, []),
    "npipe_version_string": (c_char_p, []),
    "npipe_strerror": (c_char_p, [c_int]),
    "npipe_err_name": (c_char_p, [c_int]),
    "npipe_last_os_error": (c_uint32, []),
    "npipe_last_error_message": (c_char_p, []),
    "npipe_poll_create": (c_int32, [POINTER(npipe_poll_t)]),
    "npipe_poll_close": (c_int32, [npipe_poll_t]),
    "npipe_register": (c_int32, [npipe_poll_t, npipe_t, c_uint64, c_uint32]),
    "npipe_reregister": (c_int32, [npipe_poll_t, npipe_t, c_uint64, c_uint32]),
    "npipe_deregister": (c_int32, [npipe_poll_t, npipe_t]),
    "npipe_poll_wait": (c_int32, [npipe_poll_t, POINTER(EventStruct), c_size_t, c_int32]),
    "npipe_poll_wake": (c_int32, [npipe_poll_t, c_uint64]),
    "npipe_server_options_init": (None, [POINTER(ServerOptions)]),
    "npipe_client_options_init": (None, [POINTER(ClientOptions)]),
    "npipe_create": (c_int32, [c_char_p, POINTER(ServerOptions), POINTER(npipe_t)]),
    "npipe_connect": (c_int32, [npipe_t]),
    "npipe_disconnect": (c_int32, [npipe_t]),
    "npipe_take_error": (c_int32, [npipe_t]),
    "npipe_open": (c_int32, [c_char_p, POINTER(ClientOptions), POINTER(npipe_t)]),
    "npipe_from_raw_handle": (c_int32, [intptr_t, c_uint32, POINTER(npipe_t)]),
    "npipe_raw_handle": (c_int32, [npipe_t, POINTER(intptr_t)]),
    "npipe_resolve_name": (c_int32, [c_char_p, c_char_p, c_size_t]),
    "npipe_read": (c_int64, [npipe_t, c_void_p, c_size_t]),
    "npipe_write": (c_int64, [npipe_t, c_void_p, c_size_t]),
    "npipe_readv": (c_int64, [npipe_t, POINTER(IoVec), c_size_t]),
    "npipe_writev": (c_int64, [npipe_t, POINTER(IoVec), c_size_t]),
    "npipe_read_msg": (c_int64, [npipe_t, c_void_p, c_size_t, POINTER(c_uint32)]),
    "npipe_flush": (c_int32, [npipe_t]),
    "npipe_close": (c_int32, [npipe_t]),
    "npipe_get_info": (c_int32, [npipe_t, POINTER(InfoStruct)]),
    "npipe_wait": (c_int32, [npipe_t, c_uint32, c_int32]),
    "npipe_listener_options_init": (None, [POINTER(ListenerOptions)]),
    "npipe_listen": (c_int32, [c_char_p, POINTER(ListenerOptions), POINTER(npipe_t)]),
    "npipe_accept": (c_int32, [npipe_t, POINTER(npipe_t)]),
    "npipe_peer_identity": (c_int32, [npipe_t, POINTER(PeerStruct)]),
    "npipe_drain": (c_int32, [npipe_t]),
}

if sys.platform == "win32":
    _NAMES = ["npipe.dll"]
elif sys.platform == "darwin":
    _NAMES = ["libnpipe.1.dylib", "libnpipe.dylib"]
else:
    _NAMES = ["libnpipe.so.1", "libnpipe.so"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_lib_path: Optional[str] = None


def _build_tree_candidates() -> List[Path]:
    # bindings/python/npipe/_native.py -> the repository root, only if it really is an npipe checkout.
    root = _PACKAGE_DIR.parent.parent.parent
    if not (root / "include" / "npipe.h").is_file():
        return []
    sub = "win" if sys.platform == "win32" else "native"
    return [root / "build" / sub / n for n in _NAMES]


def _candidates() -> List[str]:
    """Where the library is looked for, in order (without $NPIPE_LIBRARY)."""
    found = [str(_PACKAGE_DIR / n) for n in _NAMES]
    found += [str(p) for p in _build_tree_candidates()]
    return found


def _declare(lib: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)  # AttributeError for a library that lacks a function
        fn.restype = restype
        fn.argtypes = argtypes


def _check_version(version: int, path: str) -> None:
    major = version >> 16
    if major != ABI_MAJOR:
        raise _errors.LibraryLoadError(
            f"{path} is npipe {major}.{(version >> 8) & 0xFF}.{version & 0xFF}, but this Python package "
            f"needs major version {ABI_MAJOR}: install the matching npipe package, or point NPIPE_LIBRARY "
            f"at a libnpipe built from the same release"
        )


def _open(path: str) -> ctypes.CDLL:
    kwargs = {}
    if sys.platform == "win32":
        kwargs["winmode"] = 0  # plain LoadLibrary search for an absolute path
    lib = ctypes.CDLL(path, **kwargs)
    try:
        version = lib.npipe_version
    except AttributeError:
        raise _errors.LibraryLoadError(f"{path} was loaded but exports no npipe_version(): not an npipe library")
    version.restype, version.argtypes = c_uint32, []
    _check_version(version(), path)
    try:
        _declare(lib)
    except AttributeError as e:
        raise _errors.LibraryLoadError(f"{path} lacks a function this binding needs ({e}); use a matching release")
    return lib


def _load() -> ctypes.CDLL:
    global _lib, _lib_path
    env = os.environ.get("NPIPE_LIBRARY")
    if env:
        try:
            lib = _open(env)
        except _errors.LibraryLoadError:
            raise
        except OSError as e:
            raise _errors.LibraryLoadError(
                f"NPIPE_LIBRARY={env!r} could not be loaded ({e}); point it at libnpipe.so.1 / npipe.dll or unset it"
            ) from None
        _lib, _lib_path = lib, env
        return lib
    tried: List[str] = []
    for path in _candidates():
        if os.path.exists(path):
            _lib, _lib_path = _open(path), path
            return _lib
        tried.append(path)
    # The system's search: dlopen's own path (LD_LIBRARY_PATH, ld.so cache), then find_library.
    system = list(_NAMES)
    found = ctypes.util.find_library("npipe")
    if found and found not in system:
        system.append(found)
    for name in system:
        try:
            lib = _open(name)
        except _errors.LibraryLoadError:
            raise
        except OSError:
            tried.append(f"system search for {name}")
            continue
        _lib, _lib_path = lib, name
        return lib
    raise _errors.LibraryLoadError(
        "the npipe shared library was not found. Tried: " + "; ".join(tried) + ". Fix: set NPIPE_LIBRARY to "
        "the full path of libnpipe.so.1 (npipe.dll on Windows), or reinstall this package with "
        "NPIPE_BUNDLE_LIBRARY=<that path> so a copy ships inside it, or build it in the checkout "
        "(meson setup build/native && ninja -C build/native)"
    )


def library() -> ctypes.CDLL:
    """The loaded npipe library (loaded and checked on first use)."""
    lib = _lib
    if lib is not None:
        return lib
    with _lock:
        return _lib if _lib is not None else _load()


def library_path() -> str:
    """The path (or system name) the npipe library was loaded from."""
    library()
    assert _lib_path is not None
    return _lib_path


def last_error(code: int) -> _errors.NpipeError:
    """The exception for status ``code`` of the call that just failed on this thread.

    Must be called right after the failing call: it reads the thread-local detail
    (``npipe_last_error_message`` / ``npipe_last_os_error``) the failure left behind.
    """
    lib = library()
    message = (lib.npipe_last_error_message() or b"").decode("utf-8", "replace")
    os_error = lib.npipe_last_os_error()
    name = (lib.npipe_err_name(code) or b"NPIPE_EUNKNOWN").decode("ascii", "replace")
    return _errors.error_for(code, message, name=name, os_error=os_error)


def check(rc: int) -> int:
    """Return ``rc`` if it is a success (>= 0), else raise the matching :class:`NpipeError`."""
    if rc < 0:
        raise last_error(rc)
    return rc


def strerror(code: int) -> str:
    """The library's static English text for a status code."""
    return (library().npipe_strerror(code) or b"").decode("utf-8", "replace")
