"""``MemoizedFunction``: a function whose results live in a store, computed once per key cluster-wide.

A call reads the key's record: a fresh ``Result`` is returned (one read; one
request on object stores).  Anything else is a miss: the caller claims the
key (``lease.py``) and runs the body, or waits for the caller that holds it.
A result older than ``expire_after`` is a miss too, claimed by compare-and-
swap over it, so exactly one caller in the cluster recomputes it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
import types
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar, cast

from ...coordination.leases import waits
from ...core.front import PersiDict
from ...keys.chars import replace_unsafe_chars
from ...keys.tuples import NonEmptySafeStrTuple, is_valid_component, key_text, to_nonempty_key
from ...protocol.flags import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, ConditionalOperationResult
from .arguments import ArgumentDigester
from .code import Fingerprint, fingerprint
from .encoding import module_name, type_name
from .lease import HeldLease, claim, lease_is_over
from .records import PUBLIC_MODULE, Lease, Result
from .waiting import WaitNotice

__all__ = ["CachedCall", "CallInfo", "MemoizeStats", "MemoizedFunction", "Options"]

P = ParamSpec("P")
R = TypeVar("R")

_log = logging.getLogger("persidict.pipelines.memoize")

KEY_PREFIX = "memoize"
"""The first component of every memoized key."""

_CODE_DIGEST_LENGTH = 32
"""Hex characters of the code fingerprint in keys (128 bits)."""

_BULK_WORKERS = 16
"""Requests in flight at once when ``clear()`` deletes many results."""


@dataclass(frozen=True)
class Options:
    """How one memoized function keys, claims and expires its results (see ``memoize``)."""

    version: str | int | None = None
    lease: float = 60.0
    poll: float = 1.0
    name: str | None = None
    ignore: tuple[str, ...] = ()
    key: Callable[..., Any] | None = None
    expire_after: float | None = None
    package_versions: bool = False
    progress: bool = False
    allow_non_atomic: bool = False


@dataclass(frozen=True)
class CallInfo(Generic[R]):
    """What one call did: ``computed`` (it ran the body) or read a stored result.

    ``seconds`` is how long the computation took (this call's, or the stored
    result's when it was computed); ``computed_at`` when the result was made
    (wall clock); ``waited`` the seconds this call spent waiting for another
    process's computation; ``key`` the store key of the call.
    """

    value: R
    computed: bool
    seconds: float
    key: NonEmptySafeStrTuple
    computed_at: float | None
    waited: float = 0.0


@dataclass(frozen=True)
class CachedCall:
    """One stored result of a memoized function, as ``cached_calls()`` lists them."""

    key: NonEmptySafeStrTuple
    timestamp: float
    computed_at: float | None
    seconds: float | None
    arguments: str


@dataclass(frozen=True)
class MemoizeStats:
    """Calls of one memoized function in this process: read (hits), computed (misses), and the time saved."""

    hits: int = 0
    misses: int = 0
    seconds_computing: float = 0.0
    seconds_saved: float = 0.0
    seconds_waiting: float = 0.0


# --- identity -------------------------------------------------------------------------------


def _safe_component(text: str) -> str:
    """``text`` as a key component: itself if safe, else a readable form plus a hash of the original."""
    if is_valid_component(text):
        return text
    readable = replace_unsafe_chars(text[:200], "_")
    return f"{readable}~{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


def _identity(func: Callable[..., Any], name: str | None) -> tuple[str, str]:
    """The module and qualified name that identify ``func`` in keys (``name`` replaces the latter)."""
    if isinstance(func, (staticmethod, classmethod)):
        raise TypeError("memoize a function, then make it a static method: put @staticmethod above @memoize")
    if isinstance(func, types.MethodType):
        raise TypeError(
            f"memoize got the bound method {func.__qualname__}: its instance would not be part of the key; "
            "decorate the function in the class body, or a function"
        )
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not isinstance(module, str):
        raise TypeError(f"memoize needs a function defined in a module; {func!r} has no __module__")
    if name is not None:
        qualname = name
    elif not isinstance(qualname, str) or "<" in qualname:
        raise TypeError(
            f"memoize cannot key {func!r} by its name ({qualname!r}): lambdas, nested functions and "
            "callables without a qualified name have no stable identity; pass name='...' to give it one"
        )
    return _safe_component(module_name(module)), _safe_component(qualname)


# --- the memoized function ------------------------------------------------------------------


class MemoizedFunction(Generic[P, R]):
    """A function whose results live in a PersiDict, computed once per key by one caller among all.

    Call it like the function.  ``call_with_info(...)`` also says whether the
    call computed or read its result and how long the computation took;
    ``key(...)`` is the store key of a call; ``cached_calls()``, ``forget(...)``
    and ``clear()`` list and delete this function's results; ``stats`` counts
    this process's hits and misses.  It pickles by reference (module and
    qualified name), as the function does, so process pools can run it.
    """

    __wrapped__: Callable[P, R]  # set by functools.update_wrapper, with the other metadata
    __name__: str

    def __init__(self, func: Callable[P, R], store: PersiDict[Any], options: Options) -> None:
        self._func = func
        self.store = store
        self.options = options
        self._prefix = (KEY_PREFIX, *_identity(func, options.name))
        self._qualname = str(getattr(func, "__qualname__", options.name))
        self._digester = ArgumentDigester(func, self._qualname, options.ignore, options.key)
        self._fingerprints: tuple[Fingerprint, ...] = ()
        self._code_component = "" if options.version is None else _safe_component(f"v={options.version}")
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(vars(MemoizeStats()), 0.0)
        functools.update_wrapper(self, func)

    # --- identity and keys ------------------------------------------------------------
    def __repr__(self) -> str:
        from .html import location_text

        return f"<memoized {'.'.join(self._prefix[1:3])} in {location_text(self.store)}>"

    def _repr_html_(self) -> str:
        from .html import memoized_html

        return memoized_html(self)

    def __reduce__(self) -> str:
        return self._qualname  # pickle: the global of that name in the function's module

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        """Bind as a method: ``self`` becomes the first argument, and part of the key."""
        return self if instance is None else types.MethodType(self, instance)

    @property
    def code_version(self) -> str:
        """The key component that stands for the code: ``v=<version>``, or ``code=<fingerprint>``."""
        if self.options.version is not None:
            return self._code_component
        current = bool(self._fingerprints)
        for known in self._fingerprints:
            current = current and known.is_current()
        if not current:
            self._fingerprints = self._fingerprint()
            combined = hashlib.sha256("".join(known.digest for known in self._fingerprints).encode()).hexdigest()
            self._code_component = f"code={combined[:_CODE_DIGEST_LENGTH]}"
        return self._code_component

    def _fingerprint(self) -> tuple[Fingerprint, ...]:
        """The fingerprints of the body (and of the ``key`` function), warning once about missing source."""
        roots = (self._func,) if self.options.key is None else (self._func, self.options.key)
        found = tuple(fingerprint(root, package_versions=self.options.package_versions) for root in roots)
        blind = sorted({name for known in found for name in known.without_source})
        if blind and not self._fingerprints:
            _log.warning(
                "memoize: no source for %s (used by %s): keyed by compiled code, which changes with the "
                "Python version; pass version= to key by a version you control", ", ".join(blind), self._qualname,
            )
        return found

    def _key_prefix(self) -> tuple[str, ...]:
        return (*self._prefix, self.code_version)

    def key(self, *args: P.args, **kwargs: P.kwargs) -> NonEmptySafeStrTuple:
        """The store key of a call with these arguments: module, name, code version, digest of the arguments."""
        return to_nonempty_key((*self._key_prefix(), self._digester.digest(args, kwargs)))

    # --- calls ------------------------------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.call_with_info(*args, **kwargs).value

    def call_with_info(self, *args: P.args, **kwargs: P.kwargs) -> CallInfo[R]:
        """Call the function (or read its stored result) and say which happened, and what it cost."""
        key = self.key(*args, **kwargs)
        seen = self.store.get_with_etag(key)  # one read: one request on object stores
        record = seen.new_value
        if isinstance(record, Result) and not self._expired(key, record):
            return self._hit(key, record, waited=0.0)
        return self._compute_or_wait(key, seen, args, kwargs)

    def _expired(self, key: NonEmptySafeStrTuple, record: Result) -> bool:
        """Whether ``record`` is older than ``expire_after`` (records of old releases: the key's write time)."""
        if self.options.expire_after is None:
            return False
        computed_at = record.computed_at
        if computed_at is None:
            try:
                computed_at = self.store.timestamp(key)
            except KeyError:
                return True  # deleted since it was read: a miss, as an absent key is
        return time.time() - computed_at > self.options.expire_after

    def _hit(self, key: NonEmptySafeStrTuple, record: Result, waited: float) -> CallInfo[R]:
        seconds = record.seconds or 0.0
        self._count(hits=1, seconds_saved=seconds, seconds_waiting=waited)
        return CallInfo(cast(R, record.value), False, seconds, key, record.computed_at, waited)

    def _count(self, **increments: float) -> None:
        with self._lock:
            for name, increment in increments.items():
                self._counts[name] += increment

    @property
    def stats(self) -> MemoizeStats:
        """Hits, misses, seconds computing, seconds saved (the stored results' computing time) in this process."""
        with self._lock:
            counts = dict(self._counts)
        return MemoizeStats(int(counts.pop("hits")), int(counts.pop("misses")), **counts)

    def _claimable(self, key: NonEmptySafeStrTuple, record: Any) -> str | None:
        """Why this record may be replaced by our claim ('' for an absent key), or None to wait for it."""
        if record is ITEM_NOT_AVAILABLE:
            return ""
        if isinstance(record, Result):
            return "its result expired" if self._expired(key, record) else None
        if not isinstance(record, Lease):
            raise TypeError(f"memoize: {key_text(key)} holds a {type_name(record)}, not a Lease or a Result")
        return lease_is_over(record)

    def _compute_or_wait(
        self, key: NonEmptySafeStrTuple, seen: ConditionalOperationResult[Any], args: Any, kwargs: Any
    ) -> CallInfo[R]:
        """Claim the key and run the body, or wait for whoever holds it; loops until a result exists."""
        notice: WaitNotice | None = None
        pauses = waits(self.options.poll)
        try:
            while True:
                record = seen.new_value
                if isinstance(record, Result) and not self._expired(key, record):
                    return self._hit(key, record, waited=0.0 if notice is None else notice.seconds)
                reason = self._claimable(key, record)
                if reason is None:  # a live lease: someone else is computing
                    lease = cast(Lease, record)
                    notice = notice or WaitNotice(self._call_text(args, kwargs), lease, progress=self.options.progress)
                    notice.update(lease)
                    time.sleep(next(pauses))
                    seen = self.store.get_with_etag(key)
                    continue
                mine, seen = self._claim(key, seen, reason)
                if mine is not None:
                    return self._run_body(key, mine, args, kwargs)
                # lost the race: the refusal carries what won
        finally:
            if notice is not None:
                notice.close()

    def _claim(
        self, key: NonEmptySafeStrTuple, seen: ConditionalOperationResult[Any], reason: str
    ) -> tuple[HeldLease | None, ConditionalOperationResult[Any]]:
        """Try to claim the key over what ``seen`` read (logging why, when it replaces a record); our lease
        (None if another caller won) and what the key holds now."""
        if reason:
            record = seen.new_value
            holder = f"the lease of {record.owner}" if isinstance(record, Lease) else "the stored result"
            _log.warning("memoize: taking over %s from %s: %s", key_text(key), holder, reason)
        self._require_atomic()
        return claim(self.store, key, self.options.lease, seen)

    def _call_text(self, args: Any, kwargs: Any) -> str:
        return f"{self._qualname}({self._digester.summary(args, kwargs)})"

    def _require_atomic(self) -> None:
        """Refuse to claim on a store whose server ignores conditional writes (checked once per endpoint)."""
        from ...coordination.conditions import require_atomic

        require_atomic(self.store, "memoize", allow_non_atomic=self.options.allow_non_atomic)

    def _run_body(self, key: NonEmptySafeStrTuple, lease: HeldLease, args: Any, kwargs: Any) -> CallInfo[R]:
        """Run the body under a renewed lease, then store its result (or release the key if it raised)."""
        lease.keep_alive()
        started = time.perf_counter()
        try:
            value = self._func(*args, **kwargs)
        except BaseException:
            lease.release(keep_token=False)
            raise
        seconds = time.perf_counter() - started
        self._count(misses=1, seconds_computing=seconds)
        result = Result(value, time.time(), seconds, self._digester.summary(args, kwargs))
        self._store_result(key, result, lease)
        return CallInfo(value, True, seconds, key, result.computed_at)

    def _store_result(self, key: NonEmptySafeStrTuple, result: Result, lease: HeldLease) -> None:
        """Replace our lease by the result (nothing if the lease was lost); a refused value releases the key."""
        try:
            stored = lease.replace(result)
        except BaseException:  # a result the store cannot hold: not cached, like an exception
            lease.release(keep_token=False)
            raise
        if not stored:
            _log.warning(
                "memoize: the lease of %s was lost while its body ran; its result is not stored", key_text(key)
            )

    # --- the stored results -----------------------------------------------------------
    def _scope(self) -> tuple[PersiDict[Any], tuple[str, ...], tuple[str, ...]]:
        """Where this function's current results are listed: the subdict below its key prefix (for a
        store without subdicts, the store itself and that prefix to filter by), and the prefix."""
        prefix = self._key_prefix()
        try:
            return self.store.get_subdict(prefix), (), prefix
        except NotImplementedError:
            return self.store, prefix, prefix

    def cached_calls(self) -> list[CachedCall]:
        """This function's stored results (for its current code), oldest first; computations in flight are not.

        Reads every record under the function's prefix (concurrently on object stores).
        """
        scope, within, prefix = self._scope()
        calls = [
            CachedCall(to_nonempty_key((*prefix, *key.strings[len(within):])), timestamp, record.computed_at,
                       record.seconds, record.arguments)
            for key, record, timestamp in scope.items_and_timestamps()
            if key.strings[: len(within)] == within and isinstance(record, Result)
        ]
        return sorted(calls, key=lambda call: call.timestamp)

    def forget(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Delete the cached result of a call with these arguments; whether there was one.

        A computation in flight is left alone: its result is stored when done.
        """
        return _discard_result(self.store, self.key(*args, **kwargs))

    def clear(self) -> int:
        """Delete every stored result of this function (for its current code); how many were deleted.

        Only results: a computation in flight (another process's lease) is left
        alone, and so are other functions' entries and this function's results
        for other code versions.
        """
        scope, within, _ = self._scope()
        keys = [key for key in scope if key.strings[: len(within)] == within]
        with ThreadPoolExecutor(max_workers=_BULK_WORKERS) as pool:
            return sum(pool.map(functools.partial(_discard_result, scope), keys))


def _discard_result(store: PersiDict[Any], key: Iterable[str] | NonEmptySafeStrTuple) -> bool:
    """Delete ``key`` if it holds a ``Result`` (compare-and-swap on the version read); whether it did."""
    seen = store.get_with_etag(key)  # type: ignore[arg-type]
    if not isinstance(seen.new_value, Result):
        return False
    return store.discard_if(
        key, condition=ETAG_IS_THE_SAME, expected_etag=seen.actual_etag  # type: ignore[arg-type]
    ).condition_was_satisfied


MemoizedFunction.__module__ = PUBLIC_MODULE
