"""FsspecDict: the one core store, mapping keys to paths on any fsspec filesystem.

A key ``("a", "b")`` lives at ``<root>/a/b.<format>`` (each component
optionally signed with a digest suffix, see ``keys.sign_component``).  Values
go through the format's codec; versions (ETag and timestamp) come from the
backend's own metadata.  Conditional operations map onto the backend's
conditional ``put``/``remove``, so they are exactly as atomic as the backend
(``backend.atomic_conditions``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from typing import Any, Self

from .backends import ABSENT, ANY, Expected, PreconditionFailed, StorageBackend, Version, open_backend
from .exceptions import BackendError, ConcurrencyConflictError, MutationPolicyError
from .jokers_and_status_flags import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    DELETE_CURRENT,
    ETAG_IS_THE_SAME,
    IF_ETAG_CHANGED,
    ITEM_NOT_AVAILABLE,
    KEEP_CURRENT,
    NEVER_RETRIEVE,
    VALUE_NOT_RETRIEVED,
    ConditionalOperationResult,
    ETagConditionFlag,
    ETagIfExists,
    ETagValue,
    Joker,
    RetrieveValueFlag,
    ValueType,
)
from .persi_dict import (
    APPEND_ONLY,
    NonEmptyPersiDictKey,
    PersiDict,
    PersiDictKey,
    absent_result,
    condition_holds,
    require_retrieve_mode,
    should_retrieve,
    validate_iter_request,
)
from .safe_str_tuple import NonEmptySafeStrTuple, SafeStrTuple, to_nonempty_key
from .safe_str_tuple_signing import sign_component, unsign_component
from .serialization import get_codec

__all__ = ["FsspecDict"]

CONFLICT_ATTEMPTS = 16
"""Check-and-write rounds before a conditional operation gives up on a key others keep changing."""


class FsspecDict(PersiDict[ValueType]):
    """A persistent dict on any fsspec URL, local path or ``UPath``.

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
        else:
            self._backend = open_backend(url_or_path, storage_options)
        self.safe_json = bool(safe_json)
        self._codec = get_codec(serialization_format, safe_json=self.safe_json)
        self._suffix = "." + serialization_format
        try:
            self._backend.ensure_root()
        except OSError as exc:
            raise BackendError(
                f"cannot create the store's root {self._backend.root!r}: {exc}",
                backend=self._backend.backend_name,
                operation="init",
            ) from exc

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
    def atomic_conditions(self) -> bool:
        """Whether conditional operations are atomic against every other writer."""
        return self._backend.atomic_conditions

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params.update(
            digest_len=self.digest_len,
            safe_json=self.safe_json,
            storage_options=self._storage_options,
            url_or_path=self.url,
        )
        return dict(sorted(params.items()))

    def with_local_cache(self, base_dir: str | os.PathLike[str], *, digest_len: int = 8) -> PersiDict[ValueType]:
        """This store behind a read-through cache in the local folder ``base_dir``.

        Meant for remote stores: a cached value is validated with one
        conditional request that transfers no body while it is unchanged
        (append-only stores trust the cache and send none).
        """
        from .wrappers.local_cache import with_local_cache

        return with_local_cache(self, base_dir=base_dir, digest_len=digest_len)

    def key_to_path(self, key: NonEmptyPersiDictKey) -> str:
        """The path in ``self.fs`` where the value of ``key`` is stored."""
        return self._path(to_nonempty_key(key))

    def _path(self, key: NonEmptySafeStrTuple) -> str:
        strings = key.strings
        if self.digest_len:
            strings = tuple(sign_component(s, self.digest_len) for s in strings)
        relative = "/".join(strings)
        # Defense in depth: validated keys cannot do this, forged ones must not either.
        if relative.count("/") + 1 != len(strings) or "\\" in relative or "." in strings or ".." in strings:
            raise ValueError(f"Key resolves to a path outside the store's root: {key!r}")
        return self._backend.path_for(relative + self._suffix)

    def _key_from_relative(self, relative: str) -> NonEmptySafeStrTuple:
        parts = relative[: -len(self._suffix)].split("/")
        if self.digest_len:
            parts = [unsign_component(part, self.digest_len) for part in parts]
        return to_nonempty_key(tuple(parts))  # validates: a stray file with an unsafe name raises

    def _with_backend(self, backend: StorageBackend) -> Self:
        """A copy of this dict on another backend (subdicts)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._backend = backend
        return clone

    # --- errors, encoding, decoding ------------------------------------------------
    def _failure(self, operation: str, key: Any, exc: OSError) -> Exception:
        """Translate a backend ``OSError`` into the contract's exception (raise it ``from exc``)."""
        if exc.errno == errno.ENAMETOOLONG:
            return ValueError(f"Key {key!r} is too long for this filesystem")
        return BackendError(
            f"{operation} failed for key {key!r}: {exc}",
            backend=self._backend.backend_name,
            operation=operation,
            key=key,
        )

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

    def _version_or_absent(self, path: str, key: NonEmptySafeStrTuple) -> Version | None:
        try:
            return self._backend.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._failure("stat", key, exc) from exc

    def _read_versioned(self, path: str, key: NonEmptySafeStrTuple) -> tuple[Any, Version] | None:
        try:
            data, version = self._backend.read_versioned(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._failure("read", key, exc) from exc
        return self._decode(data, key), version

    def _put(self, path: str, data: bytes, expected: Expected, key: NonEmptySafeStrTuple) -> ETagValue:
        if expected == "":
            raise PreconditionFailed(path)  # no real ETag is empty (and HTTP clients drop empty headers)
        try:
            return ETagValue(self._backend.put(path, data, expected))
        except OSError as exc:
            raise self._failure("write", key, exc) from exc

    def _remove(self, path: str, expected: Expected, key: NonEmptySafeStrTuple) -> None:
        if expected == "":
            raise PreconditionFailed(path)
        try:
            self._backend.remove(path, expected)
        except FileNotFoundError as exc:
            raise KeyError(key) from exc
        except OSError as exc:
            raise self._failure("delete", key, exc) from exc

    # --- item primitives -------------------------------------------------------------
    def __getitem__(self, key: NonEmptyPersiDictKey) -> ValueType:
        key = to_nonempty_key(key)
        try:
            data = self._backend.read(self._path(key))
        except FileNotFoundError as exc:
            raise KeyError(key) from exc
        except OSError as exc:
            raise self._failure("read", key, exc) from exc
        return self._decode(data, key)  # type: ignore[no-any-return]

    def __setitem__(self, key: NonEmptyPersiDictKey, value: Any) -> None:
        key = to_nonempty_key(key)
        if value is KEEP_CURRENT:
            return
        if value is DELETE_CURRENT:
            self.discard(key)
            return
        data = self._encode(value)
        try:
            self._backend.put(self._path(key), data, ABSENT if self._append_only else ANY)
        except PreconditionFailed:
            raise MutationPolicyError(APPEND_ONLY) from None
        except OSError as exc:
            raise self._failure("write", key, exc) from exc

    def __delitem__(self, key: NonEmptyPersiDictKey) -> None:
        self._check_append_only()
        key = to_nonempty_key(key)
        self._remove(self._path(key), ANY, key)

    def _remove_item(self, key: NonEmptySafeStrTuple) -> None:
        self._remove(self._path(key), ANY, key)

    def __contains__(self, key: object) -> bool:
        key = to_nonempty_key(key)
        try:
            return self._backend.exists(self._path(key))
        except OSError as exc:
            raise self._failure("exists", key, exc) from exc

    def timestamp(self, key: NonEmptyPersiDictKey) -> float:
        """POSIX time of the key's last write, from the backend's metadata."""
        return self._stat(to_nonempty_key(key)).timestamp

    def etag(self, key: NonEmptyPersiDictKey) -> ETagValue:
        """The key's version string, from the backend's metadata."""
        return ETagValue(self._stat(to_nonempty_key(key)).etag)

    def _stat(self, key: NonEmptySafeStrTuple) -> Version:
        version = self._version_or_absent(self._path(key), key)
        if version is None:
            raise KeyError(key)
        return version

    def _get_value_and_etag(self, key: NonEmptySafeStrTuple) -> tuple[ValueType, ETagValue]:
        found = self._read_versioned(self._path(key), key)
        if found is None:
            raise KeyError(key)
        return found[0], ETagValue(found[1].etag)

    # --- listing ----------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(1 for _ in self._walk(with_timestamps=False))

    def _walk(self, *, with_timestamps: bool) -> Iterator[tuple[str, float]]:
        try:
            yield from self._backend.walk(self._suffix, with_timestamps=with_timestamps)
        except OSError as exc:
            raise self._failure("list", None, exc) from exc

    def _generic_iter(self, result_type: set[str]) -> Iterator[Any]:
        labels = validate_iter_request(result_type)
        if "values" not in labels:
            return self._iter_listing(labels)
        return self._iter_with_values(labels)

    def _iter_listing(self, labels: frozenset[str]) -> Iterator[Any]:
        with_timestamps = "timestamps" in labels
        for relative, timestamp in self._walk(with_timestamps=with_timestamps):
            key = self._key_from_relative(relative)
            if labels == {"keys"}:
                yield key
            elif with_timestamps and len(labels) == 1:
                yield timestamp
            else:
                yield key, timestamp

    def _iter_with_values(self, labels: frozenset[str]) -> Iterator[Any]:
        relatives = [relative for relative, _ in self._walk(with_timestamps=False)]
        paths = [self._backend.path_for(relative) for relative in relatives]
        found = self._backend.read_many(paths)
        for relative, entry in zip(relatives, found):
            if entry is None:
                continue  # deleted while we were listing
            key = self._key_from_relative(relative)
            value = self._decode(entry[1], key)
            row = tuple(
                item
                for label, item in (("keys", key), ("values", value), ("timestamps", entry[2].timestamp))
                if label in labels
            )
            yield row[0] if len(row) == 1 else row

    def clear(self) -> None:
        """Delete every item of this format under this root (other formats' files stay)."""
        self._check_append_only()
        for relative, _ in list(self._walk(with_timestamps=False)):
            try:
                self._backend.remove(self._backend.path_for(relative))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._failure("delete", None, exc) from exc
        self._backend.prune_empty_dirs()

    def get_subdict(self, prefix_key: PersiDictKey) -> Self:
        """The items whose keys start with ``prefix_key``, as a dict of the same type."""
        prefix = SafeStrTuple(prefix_key)
        if not prefix.strings:
            return self._with_backend(self._backend)
        strings = prefix.strings
        if self.digest_len:
            strings = tuple(sign_component(s, self.digest_len) for s in strings)
        child = self._backend.child("/".join(strings))
        child.ensure_root()
        return self._with_backend(child)

    # --- conditional operations (atomic as the backend) ----------------------------------
    def _unchanged(
        self,
        key: NonEmptySafeStrTuple,
        path: str,
        satisfied: bool,
        expected: Any,
        actual: Version,
        retrieve_value: RetrieveValueFlag,
    ) -> ConditionalOperationResult[ValueType]:
        """Report a present key that the call leaves as it is, fetching the value by rule R."""
        etag = ETagValue(actual.etag)
        if not should_retrieve(retrieve_value, expected, etag):
            return ConditionalOperationResult(satisfied, etag, etag, VALUE_NOT_RETRIEVED)
        found = self._read_versioned(path, key)
        if found is None:
            return absent_result(satisfied)
        fresh = ETagValue(found[1].etag)
        return ConditionalOperationResult(satisfied, fresh, fresh, found[0])

    def _observe(
        self, key: NonEmptySafeStrTuple, path: str, expected: Any, retrieve_value: RetrieveValueFlag
    ) -> tuple[Version | None, Any]:
        """The key's version (None if absent) and, by rule R, its value, in one backend call."""
        if retrieve_value is NEVER_RETRIEVE:
            return self._version_or_absent(path, key), VALUE_NOT_RETRIEVED
        if retrieve_value is IF_ETAG_CHANGED and isinstance(expected, str):
            try:
                data, version = self._backend.read_if_changed(path, expected)
            except FileNotFoundError:
                return None, None
            except OSError as exc:
                raise self._failure("read", key, exc) from exc
            return version, VALUE_NOT_RETRIEVED if data is None else self._decode(data, key)
        found = self._read_versioned(path, key)  # a present key's ETag always differs from INA
        return (None, None) if found is None else (found[1], found[0])

    def get_item_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        """Read ``key`` (one backend call), reporting whether ``condition`` holds."""
        require_retrieve_mode(retrieve_value)
        key = to_nonempty_key(key)
        version, value = self._observe(key, self._path(key), expected_etag, retrieve_value)
        if version is None:
            return absent_result(condition_holds(condition, expected_etag, ITEM_NOT_AVAILABLE))
        etag = ETagValue(version.etag)
        return ConditionalOperationResult(condition_holds(condition, expected_etag, etag), etag, etag, value)

    def set_item_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        value: Any,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        """Write ``value`` (or apply a joker) atomically, only if ``condition`` holds."""
        require_retrieve_mode(retrieve_value)
        key = to_nonempty_key(key)
        path = self._path(key)
        data = None if isinstance(value, Joker) else self._encode(value)
        if data is not None and condition is ETAG_IS_THE_SAME:
            # Fast path: one conditional write. Append-only stores may only insert.
            precondition: Expected | None = None
            if isinstance(expected_etag, str):
                precondition = None if self._append_only else expected_etag
            elif expected_etag is ITEM_NOT_AVAILABLE:
                precondition = ABSENT
            if precondition is not None:
                try:
                    new_etag = self._put(path, data, precondition, key)
                except PreconditionFailed:
                    pass  # report what is there below
                else:
                    return ConditionalOperationResult(True, expected_etag, new_etag, value)
        for _ in range(CONFLICT_ATTEMPTS):
            version = self._version_or_absent(path, key)
            actual: ETagIfExists = ITEM_NOT_AVAILABLE if version is None else ETagValue(version.etag)
            satisfied = condition_holds(condition, expected_etag, actual)
            if satisfied and value is DELETE_CURRENT:
                self._check_append_only()
            if version is None and (not satisfied or data is None):
                return absent_result(satisfied)
            if not satisfied or value is KEEP_CURRENT:
                return self._unchanged(key, path, satisfied, expected_etag, version, retrieve_value)  # type: ignore[arg-type]
            seen: Expected = ABSENT if version is None else version.etag
            try:
                if data is None:  # DELETE_CURRENT on a present key
                    self._remove(path, seen, key)
                    return ConditionalOperationResult(True, actual, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
                if self._append_only and version is not None:
                    raise MutationPolicyError(APPEND_ONLY)
                new_etag = self._put(path, data, seen, key)
            except (PreconditionFailed, KeyError):
                continue  # someone else changed the key between our check and our write
            return ConditionalOperationResult(True, actual, new_etag, value)
        raise ConcurrencyConflictError(key, CONFLICT_ATTEMPTS)

    def setdefault_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        default_value: Any,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        """Insert ``default_value`` atomically if ``key`` is absent and ``condition`` holds."""
        if isinstance(default_value, Joker):
            raise TypeError("setdefault_if() does not accept a joker as default_value")
        require_retrieve_mode(retrieve_value)
        key = to_nonempty_key(key)
        path = self._path(key)
        # Look first: a present key (the common case of write-once results written
        # again and again) costs one metadata request and no upload.
        for _ in range(CONFLICT_ATTEMPTS):
            version, value = self._observe(key, path, expected_etag, retrieve_value)
            if version is not None:
                etag = ETagValue(version.etag)
                return ConditionalOperationResult(condition_holds(condition, expected_etag, etag), etag, etag, value)
            if not condition_holds(condition, expected_etag, ITEM_NOT_AVAILABLE):
                return absent_result(False)
            try:
                new_etag = self._put(path, self._encode(default_value), ABSENT, key)
            except PreconditionFailed:
                continue  # inserted by someone else since we looked
            return ConditionalOperationResult(True, ITEM_NOT_AVAILABLE, new_etag, default_value)
        raise ConcurrencyConflictError(key, CONFLICT_ATTEMPTS)

    def setdefault(self, key: NonEmptyPersiDictKey, default: Any = None) -> Any:
        """The value at ``key``, atomically inserting ``default`` first if the key is absent."""
        if isinstance(default, Joker):
            raise TypeError("setdefault() does not accept a joker as the default")
        for _ in range(CONFLICT_ATTEMPTS):
            result = self.setdefault_if(
                key,
                default_value=default,
                condition=ANY_ETAG,
                expected_etag=ITEM_NOT_AVAILABLE,
                retrieve_value=ALWAYS_RETRIEVE,
            )
            if result.new_value is not ITEM_NOT_AVAILABLE:
                return default if result.value_was_mutated else result.new_value
        raise ConcurrencyConflictError(to_nonempty_key(key), CONFLICT_ATTEMPTS)

    def discard_if(
        self, key: NonEmptyPersiDictKey, *, condition: ETagConditionFlag, expected_etag: ETagIfExists
    ) -> ConditionalOperationResult[ValueType]:
        """Delete ``key`` atomically, only if ``condition`` holds."""
        key = to_nonempty_key(key)
        path = self._path(key)
        if condition is ETAG_IS_THE_SAME and isinstance(expected_etag, str) and not self._append_only:
            try:
                self._remove(path, expected_etag, key)
            except (PreconditionFailed, KeyError):
                pass  # report what is there below
            else:
                return ConditionalOperationResult(True, expected_etag, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
        for _ in range(CONFLICT_ATTEMPTS):
            version = self._version_or_absent(path, key)
            if version is None:
                return absent_result(condition_holds(condition, expected_etag, ITEM_NOT_AVAILABLE))
            actual = ETagValue(version.etag)
            if not condition_holds(condition, expected_etag, actual):
                return ConditionalOperationResult(False, actual, actual, VALUE_NOT_RETRIEVED)
            self._check_append_only()
            try:
                self._remove(path, actual, key)
            except (PreconditionFailed, KeyError):
                continue
            return ConditionalOperationResult(True, actual, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
        raise ConcurrencyConflictError(key, CONFLICT_ATTEMPTS)
