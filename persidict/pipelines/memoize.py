"""``memoize(store)``: cache a function's results in any PersiDict, computed once cluster-wide.

    @memoize(FsspecDict("s3://my-bucket/cache"), version=2)
    def train(config: dict, seed: int = 0) -> Model: ...

The first call with some arguments runs the body and stores the result; every
later call with equal arguments, in any process on any machine that opens the
same store, returns the stored result without running the body.  Callers that
arrive while the body runs wait for its result instead of computing it again.

Keys
    ``("memoize", <module>, <qualified name>, <version>, <digest>)``.  The
    digest is the SHA-256 of a canonical encoding of the arguments, bound to
    the signature with defaults applied (so ``f(1, b=2)``, ``f(1, 2)`` and,
    if ``b`` defaults to 2, ``f(1)`` share a key).  The encoding is the same
    in every process and on every machine, whatever ``PYTHONHASHSEED``:
    pickle bytes are not (set order, protocols, memo ids), so they are not
    used.  It covers None, bool, int, float (by ``repr``: ``-0.0`` differs
    from ``0.0``; every NaN is the same), complex, str, bytes, bytearray,
    tuple and list (distinct), dict (entries sorted by the encoding of their
    keys), set and frozenset (sorted), datetime, date, time, timedelta,
    Decimal (by ``str``: ``1.0`` differs from ``1.00``), Fraction, UUID,
    pathlib paths, enum members, dataclass instances and namedtuples (their
    class and fields), SafeStrTuple, numpy arrays and scalars (dtype, shape
    and bytes; numpy is never imported here), and subclasses of the builtin
    types (their class plus the builtin value, if they keep no attributes).
    Anything else raises ``TypeError`` naming the argument and the type.  A
    parameter left at a default that cannot be encoded (a sentinel such as
    ``object()``) is keyed as "the default".  Methods get ``self`` as an
    argument, which must be encodable too (a dataclass instance is); prefer
    functions and static methods.  Bump ``version=`` when the body changes
    meaning: old results stay in the store under the old version.

Records and formats
    The store holds a ``Lease(owner, expires_at)`` while the body runs, then a
    ``Result(value)``.  A pkl store (the default format; dill for lambdas in
    results) holds any picklable result; a json store holds what jsonpickle
    can; a ``safe_json`` store holds neither record.  The store must be
    mutable (not append-only): the result replaces the lease.

The lease protocol
    * A cached result costs one read: one request on object stores.
    * An absent key is claimed by insert-if-absent of a lease (``set_item_if``
      with ``ETAG_IS_THE_SAME`` and ``ITEM_NOT_AVAILABLE``): exactly one caller
      wins; the others wait with jittered backoff (at most ``poll`` seconds
      between reads) and return the result when it appears.
    * While the body runs, a background thread renews the lease every
      ``lease / 3`` seconds by compare-and-swap on the lease's own ETag, so a
      long computation is never taken over.
    * A lease that is not renewed expires (its claimer crashed or hangs): a
      waiter that sees it expired takes it over by compare-and-swap on the ETag
      it read (one waiter wins) and runs the body itself.
    * The result replaces the lease by compare-and-swap on the lease's current
      ETag.  A claimer that lost its lease meanwhile (its renewals failed for
      longer than ``lease``, or someone deleted the key) writes nothing: it
      returns the value it computed and logs a warning, and the store keeps
      what the new owner writes.
    * An exception from the body (or a result the store cannot hold) reaches
      the caller and is not cached: the claimer deletes its lease (compare-and-
      swap again), so the waiters see the key disappear and one of them claims
      it and runs the body.
    So the body runs once per key, unless a claimer stops renewing for longer
    than ``lease`` while alive (then its work is done twice, never stored twice).

Clocks
    A lease's expiry is the claimer's wall clock (``time.time()``) plus
    ``lease``; waiters compare it with their own wall clock.  Machines sharing a
    store need roughly synchronized clocks (NTP): the skew must be well under
    ``lease``, or a waiter may take over a live lease early.

Compared with joblib and diskcache
    ``joblib.Memory`` caches in a local folder, keyed by a hash of the pickled
    arguments (and it drops results when the function's source changes, where
    ``memoize`` relies on ``version``); it does not coordinate: processes
    that miss at once all compute.  diskcache's ``memoize_stampede`` keeps
    results in a SQLite cache on one machine and recomputes them early, in one
    background thread per key (an atomic ``add`` in SQLite); a cold miss still
    runs in every caller.  ``memoize`` works on any PersiDict (local folders,
    memory, S3, GCS, Azure and any fsspec filesystem), runs the body once
    across machines through ETag leases, lets waiters take over from crashed
    claimers, and never caches exceptions.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import functools
import hashlib
import inspect
import logging
import os
import pathlib
import random
import socket
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Generic, ParamSpec, TypeVar, cast

from ..core.front import PersiDict
from ..keys.chars import replace_unsafe_chars
from ..keys.tuples import NonEmptySafeStrTuple, SafeStrTuple, is_valid_component, key_text, to_nonempty_key
from ..protocol.exceptions import PersiDictError
from ..protocol.flags import (
    ALWAYS_RETRIEVE,
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    NEVER_RETRIEVE,
    ConditionalOperationResult,
    ETagIfExists,
)

__all__ = ["Lease", "MemoizedFunction", "Result", "memoize"]

P = ParamSpec("P")
R = TypeVar("R")

_log = logging.getLogger(__name__)


KEY_PREFIX = "memoize"
"""The first component of every memoized key."""

_FIRST_WAIT = 0.01
"""Seconds a waiter first sleeps; the wait then grows 1.5x per read, up to ``poll``."""


# --- records --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    """A claim on a key: ``owner`` is running the body and renews this until ``expires_at`` (wall clock)."""

    owner: str
    expires_at: float


@dataclass(frozen=True)
class Result:
    """The body's return value, stored under the key once it is known."""

    value: Any


# --- the canonical encoding of arguments ----------------------------------------------------


class _Undigestible(Exception):
    """An argument part that has no canonical encoding; ``path`` collects where it sits, innermost first."""

    def __init__(self, value: object) -> None:
        super().__init__(value)
        self.value = value
        self.path: list[str] = []


def _frame(tag: bytes, payload: bytes) -> bytes:
    """A self-delimiting item: tag, payload length, ``:``, payload (so concatenations are unambiguous)."""
    return b"%s%d:%s" % (tag, len(payload), payload)


def _text(text: str) -> bytes:
    """The encoding of a str (lone surrogates included)."""
    return _frame(b"S", text.encode("utf-8", "surrogatepass"))


def _int(value: int) -> bytes:
    """Two's complement bytes: exact for any size (``str`` refuses ints over 4300 digits)."""
    return _frame(b"I", value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _float(value: float) -> bytes:
    """``repr`` is the shortest exact form: ``-0.0`` and ``0.0`` differ, every NaN is ``nan``."""
    return _frame(b"F", repr(value).encode())


def _in(segment: str, value: object) -> bytes:
    """``_encode(value)``, recording ``segment`` in the path of an undigestible part."""
    try:
        return _encode(value)
    except _Undigestible as error:
        error.path.append(segment)
        raise


def _sequence(tag: bytes, items: Any) -> bytes:
    """Items in their order (tuples and lists, tagged apart)."""
    parts: list[bytes] = []
    try:
        for item in items:
            parts.append(_encode(item))
    except _Undigestible as error:
        error.path.append(f"[{len(parts)}]")
        raise
    return _frame(tag, b"".join(parts))


def _unordered(tag: bytes, items: Any) -> bytes:
    """Items sorted by their encodings: the iteration order of a set depends on the hash seed."""
    return _frame(tag, b"".join(sorted(_in("{...}", item) for item in items)))


def _mapping(value: dict[Any, Any]) -> bytes:
    """Entries sorted by the encoding of their keys: insertion order does not matter."""
    entries = []
    for key, item in value.items():
        encoded_key = _in("{key}", key)
        try:
            entries.append((encoded_key, _encode(item)))
        except _Undigestible as error:
            error.path.append(f"[{key!r:.40}]")
            raise
    return _frame(b"D", b"".join(k + v for k, v in sorted(entries)))


def _tz_name(tzname: str | None) -> str:
    """A time zone's name at some moment ('' without one)."""
    return tzname or ""


def _datetime(value: datetime.datetime) -> bytes:
    """ISO form (with the UTC offset), the fold and the zone's name."""
    return _frame(b"W", f"{value.isoformat()}|{value.fold}|{_tz_name(value.tzname())}".encode())


def _time(value: datetime.time) -> bytes:
    """ISO form, the fold and the zone's name."""
    return _frame(b"M", f"{value.isoformat()}|{value.fold}|{_tz_name(value.tzname())}".encode())


def _timedelta(value: datetime.timedelta) -> bytes:
    """Days, seconds and microseconds: the exact normalized fields."""
    return _frame(b"G", f"{value.days},{value.seconds},{value.microseconds}".encode())


_EXACT: dict[type, Callable[[Any], bytes]] = {
    type(None): lambda value: b"N",
    bool: lambda value: b"B1" if value else b"B0",
    int: _int,
    float: _float,
    complex: lambda value: _frame(b"C", _float(value.real) + _float(value.imag)),
    str: _text,
    bytes: lambda value: _frame(b"Y", value),
    bytearray: lambda value: _frame(b"y", bytes(value)),
    tuple: lambda value: _sequence(b"T", value),
    list: lambda value: _sequence(b"L", value),
    dict: _mapping,
    set: lambda value: _unordered(b"E", value),
    frozenset: lambda value: _unordered(b"Z", value),
    datetime.datetime: _datetime,
    datetime.date: lambda value: _frame(b"A", value.isoformat().encode()),
    datetime.time: _time,
    datetime.timedelta: _timedelta,
    decimal.Decimal: lambda value: _frame(b"Q", str(value).encode()),
    uuid.UUID: lambda value: _frame(b"U", value.hex.encode()),
}
"""Encoders of the supported builtin and standard types, by exact type (the fast path)."""


def _module_name(module: str) -> str:
    """A module's name as every process sees it: spawned workers import ``__main__`` as ``__mp_main__``."""
    return "__main__" if module == "__mp_main__" else module


def _class_identity(cls: type) -> bytes:
    """A class as ``module.qualname``: the same in every process."""
    return _text(f"{_module_name(cls.__module__)}.{cls.__qualname__}")


def _typed(cls: type, payload: bytes) -> bytes:
    """An instance of a user-visible class: its class identity, then its content."""
    return _frame(b"O", _class_identity(cls) + payload)


def _named_fields(names: Any, value: object) -> bytes:
    """Field names and values, in declaration order."""
    parts: list[bytes] = []
    for name in names:
        try:
            parts.append(_text(name) + _encode(getattr(value, name)))
        except _Undigestible as error:
            error.path.append(f".{name}")
            raise
    return b"".join(parts)


def _encode_numpy(value: Any) -> bytes | None:
    """Arrays and scalars by dtype, shape and bytes, if numpy is loaded (it is never imported here)."""
    np = sys.modules.get("numpy")
    if np is None:
        return None
    if type(value) is np.ndarray:
        header = _text(str(value.dtype.descr)) + _text(",".join(map(str, value.shape)))
        if value.dtype.hasobject:  # the bytes would be pointers: encode the elements
            return _frame(b"X", header + _in(".tolist()", value.tolist()))
        return _frame(b"X", header + _frame(b"Y", value.tobytes()))
    if isinstance(value, np.generic) and not value.dtype.hasobject:
        return _frame(b"x", _text(str(value.dtype.descr)) + _frame(b"Y", value.tobytes()))
    return None


def _encode_subclass(value: object) -> bytes | None:
    """An instance of a subclass of a supported builtin type, if it keeps no attributes of its own."""
    if getattr(value, "__dict__", None):
        return None
    for base in type(value).__mro__[1:]:
        encoder = _EXACT.get(base)
        if encoder is not None:
            return _typed(type(value), encoder(value))
    return None


def _encode_other(value: object) -> bytes:
    """Everything that is not of an exact supported type, or ``_Undigestible``."""
    cls = type(value)
    if isinstance(value, enum.Enum):
        return _typed(cls, _in(".value", value.value))
    if isinstance(value, tuple) and hasattr(cls, "_fields"):  # a namedtuple
        return _typed(cls, _named_fields(cls._fields, value))
    if is_dataclass(value) and not isinstance(value, type):
        return _typed(cls, _named_fields([field.name for field in fields(value)], value))
    if isinstance(value, SafeStrTuple):
        return _frame(b"K", _sequence(b"T", value.strings))
    if isinstance(value, pathlib.PurePath):
        flavor = b"w" if isinstance(value, pathlib.PureWindowsPath) else b"p"
        return _frame(b"P", flavor + _text(str(value)))
    fractions = sys.modules.get("fractions")
    if fractions is not None and cls is fractions.Fraction:
        return _frame(b"R", _int(value.numerator) + _int(value.denominator))  # type: ignore[attr-defined]
    encoded = _encode_numpy(value)
    if encoded is None:
        encoded = _encode_subclass(value)
    if encoded is None:
        raise _Undigestible(value)
    return encoded


def _encode(value: object) -> bytes:
    """The canonical bytes of ``value`` (``_Undigestible`` if it has none)."""
    encoder = _EXACT.get(type(value))
    return encoder(value) if encoder is not None else _encode_other(value)


def _type_name(value: object) -> str:
    """``module.qualname`` of a value's type (just the name for builtins)."""
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _undigestible_error(function_name: str, argument: str, error: _Undigestible) -> TypeError:
    """The ``TypeError`` that names the argument, where in it the part sits, and the part's type."""
    where = argument + "".join(reversed(error.path))
    return TypeError(
        f"memoize cannot digest argument {argument!r} of {function_name}(): {where} is a "
        f"{_type_name(error.value)}, which has no canonical encoding (supported: None, bool, int, float, "
        "complex, str, bytes, tuples, lists, dicts, sets, dates and times, Decimal, Fraction, UUID, paths, "
        "enums, dataclasses, namedtuples, SafeStrTuple and numpy arrays)"
    )


class _ArgumentDigester:
    """Digests the calls of one function: arguments bound to its signature, defaults applied, then encoded."""

    def __init__(self, func: Callable[..., Any], function_name: str) -> None:
        self._signature = inspect.signature(func)
        self._function_name = function_name
        parameters = self._signature.parameters.values()
        simple = all(parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for parameter in parameters)
        self._all_positional = tuple(parameter.name for parameter in parameters) if simple else None

    def _bound(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterable[tuple[str, Any]]:
        """(parameter, argument) pairs in signature order, as ``bind`` + ``apply_defaults`` give them."""
        names = self._all_positional
        if names is not None and not kwargs and len(args) == len(names):
            return zip(names, args, strict=True)  # the common call: every parameter by position (bind() is 4 µs)
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments.items()

    def digest(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The SHA-256 (hex) of the bound arguments: the same in every process and on every machine.

        ``TypeError`` if the arguments do not fit the signature, or if one cannot
        be encoded (the message names it and its type).
        """
        parts = []
        for name, value in self._bound(args, kwargs):
            try:
                encoded = _encode(value)
            except _Undigestible as error:
                if value is not self._signature.parameters[name].default:
                    raise _undigestible_error(self._function_name, name, error) from None
                encoded = b"d"  # left at a sentinel default: the default is part of the code, not the data
            parts.append(_text(name) + encoded)
        return hashlib.sha256(b"".join(parts)).hexdigest()


# --- function identity ----------------------------------------------------------------------


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
    if inspect.ismethod(func):
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
    return _safe_component(_module_name(module)), _safe_component(qualname)


def _version_component(version: str | int | None) -> str:
    """``v`` without a version, else ``v=<version>``."""
    return "v" if version is None else _safe_component(f"v={version}")


# --- the lease ------------------------------------------------------------------------------


def _new_owner() -> str:
    """A unique id for one claim: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _waits(poll: float) -> Iterator[float]:
    """Jittered sleeps that grow 1.5x from ``_FIRST_WAIT`` up to ``poll`` seconds."""
    delay = min(_FIRST_WAIT, poll)
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(delay * 1.5, poll)


class _LeaseKeeper:
    """Renews one claim's lease from a background thread until stopped.

    ``stop()`` returns the lease's current ETag, or None if the lease was lost
    (another caller took it over, or it was deleted).
    """

    def __init__(
        self, store: PersiDict[Any], key: NonEmptySafeStrTuple, owner: str, lease: float, etag: ETagIfExists
    ) -> None:
        self._store, self._key, self._owner, self._lease = store, key, owner, lease
        self._etag = etag
        self._lost = False
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"persidict-memoize-lease-{owner}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self._lease / 3) and self._renew():
            pass

    def _renew(self) -> bool:
        """Extend the lease by CAS on its ETag; False once it is lost (a storage failure retries next time)."""
        try:
            renewed = self._store.set_item_if(
                self._key,
                value=Lease(self._owner, time.time() + self._lease),
                condition=ETAG_IS_THE_SAME,
                expected_etag=self._etag,
                retrieve_value=NEVER_RETRIEVE,
            )
        except PersiDictError:
            _log.warning("memoize: renewing the lease of %s failed; retrying", key_text(self._key), exc_info=True)
            return True
        if not renewed.condition_was_satisfied:
            _log.warning("memoize: the lease of %s was taken over while its body ran", key_text(self._key))
            self._lost = True
            return False
        self._etag = renewed.resulting_etag
        return True

    def stop(self) -> ETagIfExists | None:
        """Stop renewing (waiting for a renewal in flight); the lease's ETag, or None if it was lost."""
        self._stopping.set()
        self._thread.join()
        return None if self._lost else self._etag


# --- the decorator --------------------------------------------------------------------------


class MemoizedFunction(Generic[P, R]):
    """A function whose results live in a PersiDict, computed once per key by one caller among all.

    Call it like the function.  ``key(*args, **kwargs)`` is the store key of a
    call, ``forget(*args, **kwargs)`` deletes its cached result, ``store`` is
    the store.  It pickles by reference (module and qualified name), as the
    function does, so process pools can run it.
    """

    __wrapped__: Callable[P, R]  # set by functools.update_wrapper, with the other metadata
    __name__: str

    def __init__(
        self,
        func: Callable[P, R],
        store: PersiDict[Any],
        *,
        version: str | int | None,
        lease: float,
        poll: float,
        name: str | None,
    ) -> None:
        self._func = func
        self.store = store
        self.lease = lease
        self.poll = poll
        self._prefix = (KEY_PREFIX, *_identity(func, name), _version_component(version))
        self._qualname = str(getattr(func, "__qualname__", name))
        self._digester = _ArgumentDigester(func, self._qualname)
        functools.update_wrapper(self, func)

    def __repr__(self) -> str:
        return f"<memoized {'.'.join(self._prefix[1:3])} in {self.store!r}>"

    def __reduce__(self) -> str:
        return self._qualname  # pickle: the global of that name in the function's module

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        """Bind as a method: ``self`` becomes the first argument, and part of the key."""
        return self if instance is None else types.MethodType(self, instance)

    def key(self, *args: P.args, **kwargs: P.kwargs) -> NonEmptySafeStrTuple:
        """The store key of a call with these arguments."""
        return to_nonempty_key((*self._prefix, self._digester.digest(args, kwargs)))

    def forget(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Delete the cached result of a call with these arguments; whether there was one.

        A computation in flight is left alone: its result is stored when done.
        """
        key = self.key(*args, **kwargs)
        seen = self.store.get_with_etag(key)
        if not isinstance(seen.new_value, Result):
            return False
        return self.store.discard_if(
            key, condition=ETAG_IS_THE_SAME, expected_etag=seen.actual_etag
        ).condition_was_satisfied

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        key = self.key(*args, **kwargs)
        seen = self.store.get_with_etag(key)  # one read: one request on object stores
        if isinstance(seen.new_value, Result):
            return cast(R, seen.new_value.value)
        return self._compute_or_wait(key, seen, args, kwargs)

    def _compute_or_wait(
        self,
        key: NonEmptySafeStrTuple,
        seen: ConditionalOperationResult[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> R:
        """Claim the key and run the body, or wait for whoever holds it; loops until a result exists."""
        owner = _new_owner()
        waits = _waits(self.poll)
        while not isinstance(seen.new_value, Result):
            claim = self._try_claim(key, seen, owner)
            if claim is None:  # a live lease: someone else is computing
                time.sleep(next(waits))
                seen = self.store.get_with_etag(key)
            elif claim.condition_was_satisfied:
                return self._run_body(key, claim.resulting_etag, owner, args, kwargs)
            else:  # lost the race: the claim's result already shows what won
                seen = claim
        return cast(R, seen.new_value.value)

    def _try_claim(
        self, key: NonEmptySafeStrTuple, seen: ConditionalOperationResult[Any], owner: str
    ) -> ConditionalOperationResult[Any] | None:
        """Claim an absent key or take over an expired lease; None while the lease seen is live."""
        record = seen.new_value
        lease = Lease(owner, time.time() + self.lease)
        if record is ITEM_NOT_AVAILABLE:
            return self.store.set_item_if(  # we just saw it absent: write first, read only if refused
                key,
                value=lease,
                condition=ETAG_IS_THE_SAME,
                expected_etag=ITEM_NOT_AVAILABLE,
                retrieve_value=ALWAYS_RETRIEVE,
            )
        if not isinstance(record, Lease):
            raise TypeError(f"memoize: {key} holds a {_type_name(record)}, not a Lease or a Result")
        if record.expires_at > time.time():
            return None
        _log.warning("memoize: taking over the expired lease of %s held by %s", key_text(key), record.owner)
        return self.store.set_item_if(
            key,
            value=lease,
            condition=ETAG_IS_THE_SAME,
            expected_etag=seen.actual_etag,
            retrieve_value=ALWAYS_RETRIEVE,
        )

    def _run_body(
        self, key: NonEmptySafeStrTuple, etag: ETagIfExists, owner: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        """Run the body under a renewed lease, then store its result (or release the key if it raised)."""
        keeper = _LeaseKeeper(self.store, key, owner, self.lease, etag)
        try:
            value = self._func(*args, **kwargs)
        except BaseException:
            self._release(key, keeper.stop())
            raise
        final_etag = keeper.stop()
        if final_etag is None:
            return value
        try:
            stored = self.store.set_item_if(
                key,
                value=Result(value),
                condition=ETAG_IS_THE_SAME,
                expected_etag=final_etag,
                retrieve_value=NEVER_RETRIEVE,
            )
        except BaseException:  # a result the store cannot hold: not cached, like an exception
            self._release(key, final_etag)
            raise
        if not stored.condition_was_satisfied:
            _log.warning(
                "memoize: the lease of %s was lost while its body ran; its result is not stored", key_text(key)
            )
        return value

    def _release(self, key: NonEmptySafeStrTuple, etag: ETagIfExists | None) -> None:
        """Delete our lease so that another caller computes; a failure is logged (the lease will expire)."""
        if etag is None:
            return
        try:
            self.store.discard_if(key, condition=ETAG_IS_THE_SAME, expected_etag=etag)
        except PersiDictError:
            _log.warning("memoize: releasing the lease of %s failed; it expires in time", key_text(key), exc_info=True)


def memoize(
    store: PersiDict[Any],
    *,
    version: str | int | None = None,
    lease: float = 60.0,
    poll: float = 1.0,
    name: str | None = None,
) -> Callable[[Callable[P, R]], MemoizedFunction[P, R]]:
    """Decorator: cache the function's results in ``store``, computed once across every process sharing it.

    ``version``: bump it when the function's meaning changes (old results are
    kept, under the old version).  ``lease``: seconds a claim lasts without
    renewal; the claimer renews it every ``lease / 3`` seconds while the body
    runs, and a claim not renewed for ``lease`` seconds (its claimer crashed)
    is taken over.  ``poll``: the longest sleep between two reads of a waiter.
    ``name``: the function's name in keys, instead of its qualified name
    (required for lambdas and nested functions).  Keys, records and the lease
    protocol: the module docstring, and docs/pipelines.md#memoize.
    """
    if getattr(store, "append_only", False):
        raise ValueError("memoize needs a mutable store: the result replaces the lease (got an append-only store)")
    if not lease > 0 or not poll > 0:
        raise ValueError(f"lease and poll must be positive numbers of seconds, got lease={lease!r}, poll={poll!r}")

    def decorate(func: Callable[P, R]) -> MemoizedFunction[P, R]:
        return MemoizedFunction(func, store, version=version, lease=lease, poll=poll, name=name)

    return decorate
