"""Codecs on open files: a value serialized straight into a file, and rebuilt straight from one.

A codec may add two optional methods to ``dumps``/``loads``: ``dump(value, file)`` and
``load(file)``.  A local store uses them so that a 256 MiB array is written by
``pickle.dump`` into the temporary file (protocol 5 hands its buffer to the file as it is,
no copy) and read by ``pickle.load`` from the open file (``readinto`` the array's own
memory), instead of passing through a ``bytes`` object of the whole value.  A codec without
them still works: ``dump_into``/``load_from`` fall back to its bytes.

Errors are those of ``dumps``/``loads``: ``TypeError`` for a value the format cannot hold
(part of it may already be in the file: the caller throws the file away), any other
exception for bytes that are no valid value.  An ``OSError`` of the file itself passes
unchanged, so a full disk is not taken for a bad value.
"""

from __future__ import annotations

import pickle
from typing import IO, TYPE_CHECKING, Any

from .legacy_pickles import is_legacy_pickle, load_legacy_pickle

if TYPE_CHECKING:
    from .registry import Codec

__all__ = ["dump_into", "load_from", "load_pickle"]

_LEGACY_MODULE = "joblib.numpy_pickle"
_PEEK = 16  # enough for every compressed start ``legacy_pickles`` knows


def dump_into(codec: Codec, value: object, file: IO[bytes]) -> None:
    """Serialize ``value`` into ``file`` with ``codec`` (its ``dump`` if it has one)."""
    dump = getattr(codec, "dump", None)
    if dump is not None:
        dump(value, file)
    else:
        file.write(codec.dumps(value))


def load_from(codec: Codec, file: IO[bytes]) -> Any:
    """Rebuild a value from the rest of ``file`` with ``codec`` (its ``load`` if it has one)."""
    load = getattr(codec, "load", None)
    return load(file) if load is not None else codec.loads(file.read())


class _LegacyPickle(Exception):
    """The pickle refers to joblib's array records: it is persidict 0.x's, load it with joblib."""


class _PlainUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that stops at the first reference to joblib's array records."""

    def find_class(self, module: str, name: str, /) -> Any:
        if module == _LEGACY_MODULE:
            raise _LegacyPickle
        return super().find_class(module, name)


def load_pickle(file: IO[bytes]) -> object:
    """Unpickle from a seekable ``file``, or load persidict 0.x's joblib pickle found there.

    A compressed joblib file is told by its first bytes: peeked where the file buffers (nothing
    is consumed), else by the error of unpickling it (a ranged remote file then costs no extra
    request). An uncompressed one is told by its first reference to joblib's array records.
    Either way the file is then read again from its start, whole, by joblib (0.x's values are
    rarely large).
    """
    peek = getattr(file, "peek", None)
    if peek is not None and is_legacy_pickle(bytes(peek(_PEEK)[:_PEEK])):
        return load_legacy_pickle(file.read())
    try:
        return _PlainUnpickler(file).load()
    except _LegacyPickle:
        file.seek(0)
        return load_legacy_pickle(file.read())
    except pickle.UnpicklingError:
        if peek is not None:
            raise
        file.seek(0)
        data = file.read()
        if not is_legacy_pickle(data):
            raise
        return load_legacy_pickle(data)


