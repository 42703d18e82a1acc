"""``memoize(store)``: the decorator, its options, and the store it opens from a path or URL."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from ...core.front import PersiDict
from ..durations import seconds_of
from .function import MemoizedFunction, Options

__all__ = ["memoize", "open_store"]

P = ParamSpec("P")
R = TypeVar("R")

StoreLike = PersiDict[Any] | str | os.PathLike[str]


def open_store(store: Any) -> PersiDict[Any]:
    """A store from what ``memoize`` was given: a store, a folder path, an fsspec URL or a ``UPath``.

    As ``joblib.Memory(location)`` does: a path is a folder (``FileDirDict``,
    created if needed), a URL (``s3://``, ``gs://``, ``memory://``, ...) an
    ``FsspecDict``.
    """
    if isinstance(store, PersiDict):
        return store
    if callable(store) and not isinstance(store, (str, os.PathLike)):
        raise TypeError(
            f"memoize needs a store first: write @memoize(store) or @memoize('/path/to/folder') above "
            f"{getattr(store, '__qualname__', 'the function')}, not a bare @memoize"
        )
    if type(store).__module__.partition(".")[0] == "upath":
        from ...core.fsspec_dict import FsspecDict

        return FsspecDict(store)
    if not isinstance(store, (str, os.PathLike)):
        raise TypeError(
            f"memoize(store): store must be a PersiDict, a folder path or an fsspec URL, got {type(store).__name__}"
        )
    return _open_location(os.fspath(store))


def _open_location(location: str) -> PersiDict[Any]:
    from fsspec.core import split_protocol

    if split_protocol(location)[0] is None:
        from ...presets.local import FileDirDict

        return FileDirDict(base_dir=location)
    from ...core.fsspec_dict import FsspecDict

    return FsspecDict(location)


def _options(
    version: str | int | None,
    lease: float,
    poll: float,
    name: str | None,
    ignore: Iterable[str],
    key: Callable[..., Any] | None,
    expire_after: datetime.timedelta | float | str | None,
    package_versions: bool,
    progress: bool,
    allow_non_atomic: bool,
) -> Options:
    """The options, checked: each bad one is a clear error at decoration, not at the first call."""
    if not lease > 0 or not poll > 0:
        raise ValueError(f"lease and poll must be positive numbers of seconds, got lease={lease!r}, poll={poll!r}")
    if isinstance(ignore, str):
        ignore = (ignore,)
    if not all(isinstance(item, str) for item in ignore):
        raise TypeError(f"ignore= takes parameter names (strings), got {ignore!r}")
    if key is not None and not callable(key):
        raise TypeError(f"key= takes a function of the call's arguments, got {type(key).__name__}")
    expiry = None if expire_after is None else seconds_of(expire_after, "expire_after")
    return Options(version, float(lease), float(poll), name, tuple(ignore), key, expiry,
                   bool(package_versions), bool(progress), bool(allow_non_atomic))


def memoize(
    store: StoreLike,
    *,
    version: str | int | None = None,
    lease: float = 60.0,
    poll: float = 1.0,
    name: str | None = None,
    ignore: Iterable[str] = (),
    key: Callable[..., Any] | None = None,
    expire_after: datetime.timedelta | float | str | None = None,
    package_versions: bool = False,
    progress: bool = False,
    allow_non_atomic: bool = False,
) -> Callable[[Callable[P, R]], MemoizedFunction[P, R]]:
    """Decorator: cache the function's results in ``store``, computed once across every process sharing it.

    ``store``: a PersiDict, a folder path or an fsspec URL.  Keys hold the
    function's module and name, a fingerprint of its code (its own, and the
    code and constants of yours it reaches), and a digest of the arguments;
    ``version``: key by this version instead of the code (results then survive
    edits until you change it).  ``ignore``: parameter names left out of the
    key; ``key``: a function of the call's arguments whose result is keyed
    instead.  ``expire_after`` (a timedelta, seconds, or ``"7d"``): an older
    result is recomputed, once cluster-wide.  ``lease``: seconds a claim lasts
    without renewal (renewed every ``lease / 3`` while the body runs; a dead
    claimer on this host is taken over at once).  ``poll``: the longest sleep
    between two reads of a waiter; ``progress``: show a bar while waiting.
    ``name``: the name in keys (required for lambdas and nested functions).
    ``package_versions``: installed packages the code uses count by version too.
    A first miss checks once that the server honours conditional writes
    (``store.check_conditions()``) and refuses a store that fails, unless
    ``allow_non_atomic=True``.
    Details: docs/pipelines.md#memoize.
    """
    opened = open_store(store)
    if getattr(opened, "append_only", False):
        raise ValueError("memoize needs a mutable store: the result replaces the lease (got an append-only store)")
    options = _options(version, lease, poll, name, ignore, key, expire_after, package_versions, progress,
                       allow_non_atomic)

    def decorate(func: Callable[P, R]) -> MemoizedFunction[P, R]:
        return MemoizedFunction(func, opened, options)

    return decorate
