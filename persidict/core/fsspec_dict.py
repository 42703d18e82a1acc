"""FsspecDict: the one core store, mapping keys to paths on any fsspec filesystem.

A key ``("a", "b")`` lives at ``<root>/a/b.<format>`` (each component
optionally signed with a digest suffix, see ``keys.digests``).  Values
go through the format's codec; versions (ETag and timestamp) come from the
backend's own metadata.  The versioned primitives of the conditional
operations map onto the backend's conditional ``put``/``remove``, so every
conditional operation is exactly as atomic as the backend
(``backend.atomic_conditions``).  Every call into the backend crosses one
error boundary (``_fail``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NoReturn, Self

from ..backends import DEFAULT_TIMEOUT, MemoryBackend, StorageBackend, open_backend
from ..codecs.registry import get_codec
from ..keys.digests import sign_component, unsign_component
from ..keys.tuples import NonEmptySafeStrTuple, SafeStrTuple, forget_key, to_nonempty_key
from ..protocol.exceptions import BackendError, BulkOperationError, MutationPolicyError
from ..protocol.flags import (
    DELETE_CURRENT,
    IF_ETAG_CHANGED,
    ITEM_NOT_AVAILABLE,
    KEEP_CURRENT,
    NEVER_RETRIEVE,
    VALUE_NOT_RETRIEVED,
    ETagIfExists,
    ETagValue,
    Joker,
    RetrieveValueFlag,
    ValueType,
)
from ..protocol.versions import ABSENT, ANY, Expected, PreconditionFailed, Version
from .front import (
    APPEND_ONLY,
    NonEmptyPersiDictKey,
    PersiDict,
    PersiDictKey,
    validate_iter_request,
)

__all__ = ["FsspecDict"]

_KEYS_OF_FILES: dict[tuple[str, str, int], NonEmptySafeStrTuple | None] = {}
"""(file below the root, suffix, digest_len) -> its key; emptied when full (keys are immutable, so shared)."""
_KEYS_OF_FILES_SIZE = 1 << 17

_PATHS_SIZE = 1 << 16
"""Paths one store remembers for the keys it met (emptied when full)."""

LIVE_WRITE_SECONDS = 60.0
"""A temporary file younger than this may belong to a write in progress: ``clear`` leaves it."""


class FsspecDict(PersiDict[ValueType]):
    """A persistent dict on any fsspec URL, local path or ``UPath``.

    Example:
        >>> d = FsspecDict("memory://doc-example")
        >>> d["a", "b"] = 1
        >>> d.key_to_path(("a", "b"))
        '/doc-example/a/b.pkl'
    """

    def __init__(
        self,
        url_or_path: Any,
        *,
        storage_options: dict[str, Any] | None = None,
        serialization_format: str = "pkl",
        append_only: bool = False,
        base_class_for_values: type | None = None,
        digest_len: int = 0,
        safe_json: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(
            append_only=append_only,
            base_class_for_values=base_class_for_values,
            serialization_format=serialization_format,
        )
        if isinstance(digest_len, bool) or not isinstance(digest_len, int):
            raise TypeError(f"digest_len must be an int, got {digest_len!r}")
        if digest_len < 0:
            raise ValueError(f"digest_len must be >= 0, got {digest_len}")
        self.digest_len = digest_len
        self._storage_options = storage_options
        if isinstance(url_or_path, StorageBackend):
            self._backend = url_or_path
            self._location: Any = None
        else:
            self._backend = open_backend(url_or_path, storage_options)
            self._location = os.fspath(url_or_path) if isinstance(url_or_path, os.PathLike) else url_or_path
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._backend.timeout = float(timeout)
        self.safe_json = bool(safe_json)
        self._codec = get_codec(serialization_format, safe_json=self.safe_json)
        self._suffix = "." + serialization_format
        self._paths: dict[tuple[str, ...], str] = {}
        try:
            self._backend.ensure_root()
        except Exception as exc:
            self._fail(exc, "init", failure=f"cannot create the store's root {self._backend.root!r}")

    # --- location --------------------------------------------------------------
    @property
    def fs(self) -> Any:
        """The fsspec filesystem holding the values."""
        return self._backend.fs

    @property
    def url(self) -> str:
        """The store's root as a protocol-qualified URL."""
        return self._backend.url

    @property
    def timeout(self) -> float:
        """Seconds one call to remote storage may take, retries included, before ``BackendError``."""
        return self._backend.timeout

    @property
    def atomic_conditions(self) -> bool:
        """Whether conditional operations are atomic against every other writer."""
        return self._backend.atomic_conditions

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params.update(
            digest_len=self.digest_len,
            safe_json=self.safe_json,
            storage_options=self._storage_options,
            timeout=self.timeout,
            url_or_path=self.url if self._location is None else self._location,
        )
        return dict(sorted(params.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        if isinstance(self._backend, MemoryBackend):
            raise TypeError(
                f"{type(self).__name__} lives in this process's memory: in another process it would be a "
                "different, empty store. Pass a store on shared storage to workers instead: a FileDirDict on "
                "a shared folder, or an s3://, gs:// or az:// FsspecDict"
            )
        return super().__reduce__()

    def with_local_cache(self, base_dir: str | os.PathLike[str], *, digest_len: int = 8) -> PersiDict[ValueType]:
        """This store behind a read-through cache in the local folder ``base_dir``.

        Meant for remote stores: a cached value is validated with one
        conditional request that transfers no body while it is unchanged
        (append-only stores trust the cache and send none).
        """
        from ..presets.local_cache import with_local_cache

        return with_local_cache(self, base_dir=base_dir, digest_len=digest_len)

    def key_to_path(self, key: NonEmptyPersiDictKey) -> str:
        """The path in ``self.fs`` where the value of ``key`` is stored."""
        return self._path(to_nonempty_key(key))

    def _relative(self, key: NonEmptySafeStrTuple) -> str:
        """The key's file name below the root: signed components joined by ``/``, plus the suffix."""
        strings = key.strings
        if self.digest_len:
            strings = tuple(sign_component(s, self.digest_len) for s in strings)
        relative = "/".join(strings)
        # Defense in depth: validated keys cannot do this, forged ones must not either.
        if relative.count("/") + 1 != len(strings) or "\\" in relative or "." in strings or ".." in strings:
            raise ValueError(f"Key resolves to a path outside the store's root: {key!r}")
        return relative + self._suffix

    def _path(self, key: NonEmptySafeStrTuple) -> str:
        """The key's path on the backend, memoized: the hot path of every item operation."""
        path = self._paths.get(key.strings)
        if path is None:
            path = self._backend.path_for(self._relative(key))
            if len(self._paths) >= _PATHS_SIZE:
                self._paths.clear()
            self._paths[key.strings] = path
        return path

    def _key_from_relative(self, relative: str) -> NonEmptySafeStrTuple | None:
        """The key stored in file ``relative``, or None for a file that is no key's.

        A stray file (``notes (copy).pkl``, or ``foo.pkl`` in a store whose
        names carry digest suffixes) is no key's: only names that map back to
        themselves count, so every listing and ``len()`` agree.  Answers are
        memoized: a listing of a large store meets the same names again.
        """
        memo_key = (relative, self._suffix, self.digest_len)
        if memo_key in _KEYS_OF_FILES:
            return _KEYS_OF_FILES[memo_key]
        parts = relative[: -len(self._suffix)].split("/")
        if self.digest_len:
            parts = [unsign_component(part, self.digest_len) for part in parts]
        try:
            key: NonEmptySafeStrTuple | None = to_nonempty_key(tuple(parts))
        except ValueError:
            key = None
        if key is not None and self._relative(key) != relative:
            key = None
        if len(_KEYS_OF_FILES) >= _KEYS_OF_FILES_SIZE:
            _KEYS_OF_FILES.clear()
        _KEYS_OF_FILES[memo_key] = key
        return key

    def _check_writable_key(self, key: NonEmptySafeStrTuple) -> None:
        """Refuse a key whose file would also be another key's (what is on disk stays readable).

        With digest suffixes, a component that already ends in its own suffix
        (``"a_btax"``) names the file of the plain one (``"a"``).
        """
        if self.digest_len:
            for s in key.strings:
                if unsign_component(s, self.digest_len) != s:
                    raise ValueError(
                        f"Key component {s!r} ends in its own digest suffix, so its file would be the one of "
                        f"{unsign_component(s, self.digest_len)!r}: choose another name"
                    )

    def _with_backend(self, backend: StorageBackend) -> Self:
        """A copy of this dict on another backend (subdicts)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        backend.timeout = self._backend.timeout  # not every backend's child() carries it
        clone._backend = backend
        clone._paths = {}  # paths are the backend's
        return clone

    # --- the error boundary, encoding, decoding ------------------------------------
    def _fail(
        self,
        exc: BaseException,
        operation: str,
        key: Any = None,
        *,
        conditional: bool = False,
        failure: str | None = None,
    ) -> NoReturn:
        """The one place storage failures become the documented exceptions (docs/errors.md#error-boundary).

        Every call into the backend is wrapped in ``try``/``except Exception as
        exc: self._fail(exc, ...)`` (free while nothing fails); callers that
        give a missing key a meaning catch ``FileNotFoundError`` first.  A
        missing path of a ``key`` passes through for the caller to interpret
        (elsewhere it is a failure), and so does an unmet
        precondition of a ``conditional`` call (the engine turns it into a
        result); a name too long for the filesystem is a ``ValueError``; any
        other ``OSError`` (backends raise nothing else), or a precondition
        failure where none was asked for, is a ``BackendError`` chained from
        it.  The documented exceptions themselves pass unchanged.
        """
        if isinstance(exc, FileNotFoundError) and key is not None:
            raise exc  # the key is absent: the caller says what that means
        if isinstance(exc, PreconditionFailed):
            if conditional:
                raise exc
            failure = failure or f"{operation} failed for key {key!r}: the storage reported an unmet precondition"
        elif not isinstance(exc, OSError):
            raise exc  # KeyError, TypeError, ValueError, the persidict errors: already documented ones
        elif exc.errno == errno.ENAMETOOLONG:
            raise ValueError(f"Key {key!r} is too long for this filesystem") from exc
        elif exc.errno in (errno.EISDIR, errno.ENOTDIR) and key is not None:
            # Local folders: a key's file name is another key's folder, or the reverse
            # (with digest_len=0, key ("c.pkl", "x") needs a folder where key "c" has its file).
            raise ValueError(
                f"Key {key!r} cannot be stored here: its path runs into another key's "
                f"{'folder' if exc.errno == errno.EISDIR else 'file'} ({exc.filename})"
            ) from exc
        if failure is None:
            failure = f"{operation} failed" + ("" if key is None else f" for key {key!r}")
        raise BackendError(
            failure if isinstance(exc, PreconditionFailed) else f"{failure}: {exc}",
            backend=self._backend.backend_name,
            operation=operation,
            key=key,
        ) from exc

    def _encode(self, value: Any) -> bytes:
        self._validate_value(value)
        return self._codec.dumps(value)

    def _decode(self, data: bytes, key: NonEmptySafeStrTuple) -> Any:
        try:
            value = self._codec.loads(data)
        except ModuleNotFoundError:
            raise  # an old format whose reader is not installed: the error names the extra
        except Exception as exc:
            raise BackendError(
                f"the stored value of {key!r} is not valid {self.serialization_format}: {exc}",
                backend=self._backend.backend_name,
                operation="decode",
                key=key,
            ) from exc
        base = self.base_class_for_values
        if base is not None and not isinstance(value, base):
            self._check_read_value(value)
        return value

    # --- item primitives -------------------------------------------------------------
    def __getitem__(self, key: NonEmptyPersiDictKey) -> ValueType:
        key = to_nonempty_key(key)
        try:
            data = self._backend.read(self._path(key))
        except FileNotFoundError as exc:
            raise KeyError(key) from exc
        except Exception as exc:
            self._fail(exc, "read", key)
        return self._decode(data, key)  # type: ignore[no-any-return]

    def __setitem__(self, key: NonEmptyPersiDictKey, value: Any) -> None:
        key = to_nonempty_key(key)
        if value is KEEP_CURRENT:
            return
        if value is DELETE_CURRENT:
            self.discard(key)
            return
        try:
            self._write_if(key, value, ABSENT if self._append_only else ANY)
        except PreconditionFailed:
            raise MutationPolicyError(APPEND_ONLY) from None

    def __delitem__(self, key: NonEmptyPersiDictKey) -> None:
        self._check_append_only()
        self._delete_if(to_nonempty_key(key), ANY)

    def _remove_item(self, key: NonEmptySafeStrTuple) -> None:
        self._delete_if(key, ANY)

    def __contains__(self, key: object) -> bool:
        key = to_nonempty_key(key)
        try:
            return self._backend.exists(self._path(key))
        except FileNotFoundError:
            return False
        except Exception as exc:
            self._fail(exc, "exists", key)

    def timestamp(self, key: NonEmptyPersiDictKey) -> float:
        """POSIX time of the key's last write, from the backend's metadata."""
        return self._stat(to_nonempty_key(key)).timestamp

    def etag(self, key: NonEmptyPersiDictKey) -> ETagValue:
        """The key's version string, from the backend's metadata."""
        return ETagValue(self._stat(to_nonempty_key(key)).etag)

    def _stat(self, key: NonEmptySafeStrTuple) -> Version:
        try:
            return self._backend.stat(self._path(key))
        except FileNotFoundError:
            raise KeyError(key) from None
        except Exception as exc:
            self._fail(exc, "stat", key)

    # --- the versioned primitives of the conditional operations (atomic as the backend) ---
    def _read_versioned(
        self, key: NonEmptySafeStrTuple, expected: Any, retrieve_value: RetrieveValueFlag
    ) -> tuple[ETagIfExists, Any]:
        """The key's ETag and, by rule R (docs/concurrency.md#rule-r), its value: one backend call.

        A HEAD, a GET, or a conditional GET.
        """
        path = self._path(key)
        try:
            if retrieve_value is NEVER_RETRIEVE:
                return ETagValue(self._backend.stat(path).etag), VALUE_NOT_RETRIEVED
            if retrieve_value is IF_ETAG_CHANGED and isinstance(expected, str):
                data, version = self._backend.read_if_changed(path, expected)
            else:  # a present key's ETag always differs from INA: fetch (docs/concurrency.md#rule-r)
                data, version = self._backend.read_versioned(path)
        except FileNotFoundError:
            return ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE
        except Exception as exc:
            self._fail(exc, "read", key)
        return ETagValue(version.etag), VALUE_NOT_RETRIEVED if data is None else self._decode(data, key)

    def _write_if(self, key: NonEmptySafeStrTuple, value: Any, expected: Expected) -> ETagValue:
        self._check_writable_key(key)
        data = self._encode(value)
        try:
            return ETagValue(self._backend.put(self._path(key), data, expected))
        except Exception as exc:
            self._fail(exc, "write", key, conditional=expected is not ANY)

    def _delete_if(self, key: NonEmptySafeStrTuple, expected: Expected) -> None:
        path = self._path(key)
        try:
            self._backend.remove(path, expected)
        except FileNotFoundError as exc:
            raise KeyError(key) from exc
        except Exception as exc:
            self._fail(exc, "delete", key, conditional=expected is not ANY)
        self._forget(key.strings, path)

    def _forget(self, strings: tuple[str, ...], path: str) -> None:
        """Drop the memo entries of a deleted key, so a process that churns keys stays flat."""
        forget_key(strings)
        self._paths.pop(strings, None)
        if _KEYS_OF_FILES:  # filled only by listings
            _KEYS_OF_FILES.pop((path[len(self._backend.root) + 1 :], self._suffix, self.digest_len), None)

    # --- listing ----------------------------------------------------------------------
    def __len__(self) -> int:
        counted = self._backend.count(self._suffix)  # O(1) where the backend keeps count (LocalDict)
        return sum(1 for _ in self._walk(with_timestamps=False)) if counted is None else counted

    def _walk(self, *, with_timestamps: bool) -> Iterator[tuple[str, NonEmptySafeStrTuple, float]]:
        """``(relative path, key, timestamp)`` of every file that is a key's (stray files are skipped)."""
        try:
            for relative, timestamp in self._backend.walk(self._suffix, with_timestamps=with_timestamps):
                key = self._key_from_relative(relative)
                if key is not None:
                    yield relative, key, timestamp
        except Exception as exc:
            self._fail(exc, "list")

    def _generic_iter(self, result_type: set[str]) -> Iterator[Any]:
        labels = validate_iter_request(result_type)
        if "values" not in labels:
            return self._iter_listing(labels)
        return self._iter_with_values(labels)

    def _iter_listing(self, labels: frozenset[str]) -> Iterator[Any]:
        walk = self._walk(with_timestamps="timestamps" in labels)
        if "timestamps" not in labels:
            return (key for _, key, _ in walk)
        if "keys" not in labels:
            return (timestamp for _, _, timestamp in walk)
        return ((key, timestamp) for _, key, timestamp in walk)

    def _iter_with_values(self, labels: frozenset[str]) -> Iterator[Any]:
        listed = [(relative, key) for relative, key, _ in self._walk(with_timestamps=False)]
        paths = [self._backend.path_for(relative) for relative, _ in listed]
        try:
            for (_, key), entry in zip(listed, self._backend.read_many(paths), strict=True):
                if entry is None:
                    continue  # deleted while we were listing
                value = self._decode(entry[1], key)
                row = tuple(
                    item
                    for label, item in (("keys", key), ("values", value), ("timestamps", entry[2].timestamp))
                    if label in labels
                )
                yield row[0] if len(row) == 1 else row
        except Exception as exc:
            self._fail(exc, "read")

    # --- bulk operations: concurrent (and batched where the API allows) on object stores ---
    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store many items: every value is checked first (``TypeError`` before anything is
        written), then they are written concurrently on object stores.  Items that fail
        are named in one ``BulkOperationError``; the others are written."""
        writes: dict[str, tuple[NonEmptySafeStrTuple, bytes]] = {}
        for raw_key, value in _pairs_of(other, kwargs):
            key = to_nonempty_key(raw_key)
            if isinstance(value, Joker):
                self[key] = value  # KEEP_CURRENT / DELETE_CURRENT: their own semantics, one by one
                continue
            self._check_writable_key(key)
            writes[self._path(key)] = (key, self._encode(value))
        expected = ABSENT if self._append_only else ANY
        try:
            failures = self._backend.put_many((path, data, expected) for path, (_, data) in writes.items())
        except Exception as exc:
            self._fail(exc, "write")
        self._raise_failures("update", {writes[path][0]: error for path, error in failures.items()})

    def get_many(self, keys: Iterable[NonEmptyPersiDictKey], default: Any = None) -> list[Any]:
        """The values of ``keys`` in order, ``default`` for an absent key; fetched concurrently on object stores."""
        normalized = [to_nonempty_key(key) for key in keys]
        try:
            found = list(self._backend.read_many([self._path(key) for key in normalized]))
        except Exception as exc:
            self._fail(exc, "read")
        pairs = zip(normalized, found, strict=True)
        return [default if entry is None else self._decode(entry[1], key) for key, entry in pairs]

    def clear(self) -> None:
        """Delete every item of this format under this root (other formats' files stay).

        Batched where the API allows (S3: 1,000 keys per request), concurrent on
        other object stores.  Temporary files that writers killed mid-write left
        behind go too (those older than a minute: a live writer's are never touched).
        """
        self._check_append_only()
        listed = {self._backend.path_for(relative): key for relative, key, _ in self._walk(with_timestamps=False)}
        try:
            failures = self._backend.remove_many(listed)
            self._backend.remove_temporary_files(older_than=LIVE_WRITE_SECONDS)
            self._backend.prune_empty_dirs()
        except Exception as exc:
            self._fail(exc, "delete")
        for path, key in listed.items():
            self._forget(key.strings, path)
        self._raise_failures("clear", {listed[path]: error for path, error in failures.items()})

    def _raise_failures(self, operation: str, failures: dict[NonEmptySafeStrTuple, Exception]) -> None:
        """One error naming every key a bulk operation could not do (nothing is dropped silently).

        Refusals of an append-only store are a ``MutationPolicyError``, as one by one.
        """
        if not failures:
            return
        if self._append_only and all(isinstance(error, PreconditionFailed) for error in failures.values()):
            refusal = MutationPolicyError(APPEND_ONLY)
            refusal.failures = dict(failures)  # type: ignore[attr-defined]
            raise refusal
        first = next(iter(failures.values()))
        raise BulkOperationError(dict(failures), backend=self._backend.backend_name, operation=operation) from first

    def remove_temporary_files(self, *, older_than: float = 3600.0) -> int:
        """Delete what writers killed mid-write left behind: hidden temporary files
        (``.__tmp__*``) older than ``older_than`` seconds.  Returns how many were removed.

        Only local folders and generic filesystems have them (object stores write
        in one request); the command line's ``gc`` calls this.
        """
        try:
            return self._backend.remove_temporary_files(older_than)
        except Exception as exc:
            self._fail(exc, "gc")

    def get_subdict(self, prefix_key: PersiDictKey) -> Self:
        """The items whose keys start with ``prefix_key``, as a dict of the same type."""
        prefix = SafeStrTuple(prefix_key)
        if not prefix.strings:
            return self._with_backend(self._backend)
        strings = prefix.strings
        if self.digest_len:
            strings = tuple(sign_component(s, self.digest_len) for s in strings)
        relative = "/".join(strings)
        try:
            child = self._backend.child(relative)
            child.ensure_root()
        except Exception as exc:
            self._fail(exc, "init")
        subdict = self._with_backend(child)
        subdict._location = None if self._location is None else _location_below(self._location, relative)
        return subdict


def _location_below(location: Any, relative: str) -> Any:
    """The URL (or UPath) of the folder ``relative`` below ``location``.

    In a chained URL (``zip://inner::file:///archive.zip``) the first link is
    the path being opened, so that is the one that grows.
    """
    if not isinstance(location, str):
        return location / relative  # a UPath
    head, separator, rest = location.partition("::")
    return f"{head.rstrip('/')}/{relative}{separator}{rest}"


def _pairs_of(other: Any, kwargs: dict[str, Any]) -> list[tuple[Any, Any]]:
    """The items of ``update``'s arguments, read as ``dict.update`` reads them."""
    if isinstance(other, Mapping):
        pairs = list(other.items())
    elif hasattr(other, "keys"):
        pairs = [(key, other[key]) for key in other.keys()]  # noqa: SIM118  # dict.update calls keys()
    else:
        pairs = list(other)
    return pairs + list(kwargs.items())
