"""Metaclasses that keep ``help()`` to the point: ``dir()`` of a class made with one lists what the
class itself defines (plus an enum's members), not every method inherited from ``OSError``,
``int`` or ``io.RawIOBase`` -- nor, for the exception subclasses, :class:`NpipeError`'s again --
so pydoc shows npipe's pages without repeating Python's. Only ``dir()`` of the class changes:
instances, ``isinstance``, attribute lookup and ``dir()`` of an instance are unaffected. (Not
used for the pipe classes, whose inherited methods tools such as ``mock.create_autospec`` need.)"""
from __future__ import annotations

import abc
import enum
from typing import List

__all__ = ["BriefType", "BriefABCMeta", "BriefEnumMeta"]

_NOISE = {"__dict__", "__weakref__", "__module__", "__annotations__", "__slots__", "__orig_bases__"}


def _npipe_names(cls: type) -> List[str]:
    return sorted(set(cls.__dict__) - _NOISE)


class BriefType(type):
    """A ``type`` whose classes list only npipe's own attributes in ``dir()`` (hence in pydoc)."""

    def __dir__(cls) -> List[str]:
        return _npipe_names(cls)


class BriefABCMeta(abc.ABCMeta):
    """:class:`BriefType` for :mod:`io` classes (whose metaclass is ``ABCMeta``)."""

    def __dir__(cls) -> List[str]:
        return _npipe_names(cls)


class BriefEnumMeta(enum.EnumMeta):
    """:class:`BriefType` for enums: the members and npipe's own attributes."""

    def __dir__(cls) -> List[str]:
        return sorted(set(_npipe_names(cls)) | set(cls.__members__))
