"""FsspecStore: the ``Store`` of every FsspecDict: keys to paths on a backend, values through a codec.

A key ``("a", "b")`` lives at ``<root>/a/b.<format>`` (each component
optionally signed with a digest suffix, see ``keys.digests``).  Values go
through the format's codec; versions (ETag and timestamp) come from the
backend's own metadata.  Writes and deletes carry their precondition to the
backend's conditional ``put``/``remove``, so the store is exactly as atomic as
the backend (``backend.atomic_conditions``).

Every call into the backend crosses one error boundary (``_fail``): a missing
path becomes ``KeyError``, an unmet precondition passes through for the engine,
and every other failure becomes a ``BackendError`` chained from its cause.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator, Sequence
from itertools import repeat
from typing import IO, Any, NoReturn, TypeVar

from ..backends.base import ReplacedMidRead, StorageBackend
from ..backends.credentials import credentials_advice, missing_credentials
from ..codecs.registry import Codec
from ..keys.digests import NAMING_RULES, sign_component, signed_stems, stem_of, unsign_component
from ..keys.tuples import NonEmptySafeStrTuple, SafeStrTuple, forget_key, is_valid_component, keys_in_folder
from ..protocol.exceptions import (
    BackendError,
    ConcurrencyConflictError,
    MissingKeyError,
    MissingRootError,
    plain_key,
)
from ..protocol.flags import VALUE_NOT_RETRIEVED
from ..protocol.store import FileSource, Store
from ..protocol.versions import ANY, Expected, PreconditionFailed, Version
from .layout import LayoutRecorder
from .listed_names import ListedNames
from .settings import mask_secrets
from .value_io import CodecDecoder, FilePayload, Undecodable, ValuePayload

__all__ = ["LIVE_WRITE_SECONDS", "FsspecStore"]

Key = NonEmptySafeStrTuple

_MEMO_SIZE = 1 << 16
"""Keys whose paths (emptied when full), and file names whose keys (filled up to it), one store remembers."""
_UNKNOWN: Any = object()

LIVE_WRITE_SECONDS = 60.0
"""A temporary file younger than this may belong to a write in progress: ``clear`` leaves it."""

T = TypeVar("T")


class FsspecStore(Store):
    """Values of one format under one root of a ``StorageBackend``."""

    def __init__(
        self,
        backend: StorageBackend,
        *,
        codec: Codec,
        serialization_format: str,
        digest_len: int,
        base_class_for_values: type | None,
        layout: LayoutRecorder | None,
        lazy_root: bool = False,
    ) -> None:
        self.backend = backend
        self._lazy_root = lazy_root  # the root (a bucket) is created by the first write, not by opening
        self.atomic_conditions = backend.atomic_conditions
        self.backend_name = backend.backend_name
        self._codec = codec
        self._format = serialization_format
        self._suffix = "." + serialization_format
        self._digest_len = digest_len
        self._base_class = base_class_for_values
        self._layout = layout
        self._decoder = CodecDecoder(codec)
        self._paths: dict[tuple[str, ...], str] = {}
        self._keys_of_files: dict[str, Key | None] = {}
        self._listed = ListedNames(_MEMO_SIZE)  # local folders: the keys of the names met, folder by folder
        self._folders: dict[str, tuple[str, ...] | None] = {}

    @property
    def digest_len(self) -> int:
        """The length of the digest suffix of every file name component (0: none)."""
        return self._digest_len

    def ensure_root(self) -> None:
        """Create the root where the filesystem needs folders (``BackendError`` if it cannot be)."""
        try:
            self.backend.ensure_root()
        except Exception as exc:
            self._fail(exc, "init", failure=f"cannot create the store's root {self.backend.url}")
        self._lazy_root = False

    def child(self, prefix: SafeStrTuple) -> FsspecStore:
        relative = self.relative_path(prefix)
        if not relative:
            return self
        try:
            backend = self.backend.child(relative)
        except Exception as exc:
            self._fail(exc, "init")
        backend.timeout, backend.retry = self.backend.timeout, self.backend.retry  # not every child() carries them
        child = FsspecStore(backend, codec=self._codec, serialization_format=self._format,
                            digest_len=self._digest_len, base_class_for_values=self._base_class, layout=self._layout,
                            lazy_root=self._lazy_root)
        if not self._lazy_root:
            child.ensure_root()
        return child

    # --- keys and paths ----------------------------------------------------------------------
    def relative_path(self, prefix: SafeStrTuple) -> str:
        """The folder of ``prefix`` below the root: its components, signed, joined by ``/``."""
        strings = prefix.strings
        if self._digest_len:
            strings = tuple(sign_component(s, self._digest_len) for s in strings)
        return "/".join(strings)

    def _relative(self, key: Key) -> str:
        """The key's file name below the root: signed components joined by ``/``, plus the suffix."""
        strings = key.strings
        relative = self.relative_path(key)
        # Defense in depth: validated keys cannot do this, forged ones must not either.
        if relative.count("/") + 1 != len(strings) or "\\" in relative or "." in strings or ".." in strings:
            raise ValueError(f"Key resolves to a path outside the store's root: {key!r}")
        return relative + self._suffix

    def path(self, key: Key) -> str:
        """The key's path on the backend, memoized: the hot path of every item operation."""
        path = self._paths.get(key.strings)
        if path is None:
            path = self.backend.path_for(self._relative(key))
            if len(self._paths) >= _MEMO_SIZE:
                self._paths.clear()
            self._paths[key.strings] = path
        return path

    def key_of(self, relative: str) -> Key | None:
        """The key stored in file ``relative``, or None for a file that is no key's.

        A stray file (``notes (copy).pkl``, or ``foo.pkl`` in a store whose
        names carry digest suffixes) is no key's: only names that map back to
        themselves count, so every listing agrees.  The first ``_MEMO_SIZE``
        names are remembered (listing a store again is then a lookup per file);
        past them names are parsed each time, never evicted and parsed again, so
        a store of a million files costs one parse per file and bounded memory.
        Their folders, few and met again and again, are remembered apart.
        """
        memo = self._keys_of_files
        key = memo.get(relative, _UNKNOWN)
        if key is _UNKNOWN:
            key = self._parse(relative)
            if len(memo) < _MEMO_SIZE:
                memo[relative] = key
        return key  # type: ignore[no-any-return]

    def _parse(self, relative: str) -> Key | None:
        """``key_of`` without the memo: one md5 per file name where names carry digest suffixes."""
        head, _, name = relative.rpartition("/")
        folder = self._folders.get(head, _UNKNOWN)
        if folder is _UNKNOWN:
            folder = self._folder_of(head)
        stem = self._stem(name[: -len(self._suffix)])
        if folder is None or stem is None:
            return None
        return NonEmptySafeStrTuple._from_valid((*folder, stem))

    def _folder_of(self, head: str) -> tuple[str, ...] | None:
        """The key components of folder ``head`` (None if it is no key's folder), memoized."""
        stems = tuple(self._stem(part) for part in head.split("/")) if head else ()
        folder = None if None in stems else stems
        if len(self._folders) >= _MEMO_SIZE:
            self._folders.clear()
        self._folders[head] = folder  # type: ignore[assignment]
        return folder  # type: ignore[return-value]

    def _stem(self, name: str) -> str | None:
        """The key component whose file or folder name is ``name`` (None if there is none)."""
        if self._digest_len:
            stem = stem_of(name, self._digest_len)
            return stem if stem is not None and is_valid_component(stem) else None
        return name if is_valid_component(name) else None

    def _check_writable(self, key: Key) -> None:
        """Refuse a key whose file would also be another key's (what is on disk stays readable).

        With digest suffixes, a component that already ends in its own suffix
        (``"a_btax"``) names the file of the plain one (``"a"``).
        """
        if self._digest_len:
            for s in key.strings:
                if unsign_component(s, self._digest_len) != s:
                    raise ValueError(
                        f"Key component {s!r} ends in its own digest suffix, so its file would be the one of "
                        f"{unsign_component(s, self._digest_len)!r}: choose another name"
                    )

    # --- the error boundary, encoding, decoding ---------------------------------------------
    def _fail(self, exc: BaseException, operation: str, key: Any = None, *, failure: str | None = None) -> NoReturn:
        """The one place storage failures become the documented exceptions (docs/errors.md#error-boundary).

        Every call into the backend is wrapped in ``try``/``except Exception as
        exc: self._fail(exc, ...)`` (free while nothing fails), after the
        caller has given a missing path (``FileNotFoundError``) and an unmet
        precondition their meaning.  A name too long for the filesystem is a
        ``ValueError``, a path that runs into another key's file or folder too;
        any other ``OSError`` (backends raise nothing else), or an unmet
        precondition where none was asked for, is a ``BackendError`` chained from
        it.  The documented exceptions themselves pass unchanged.
        """
        if isinstance(exc, ReplacedMidRead):  # a read started again while writers replaced the value, to no end
            raise ConcurrencyConflictError(key, exc.attempts) from exc
        if isinstance(exc, PreconditionFailed):
            failure = failure or f"{operation} failed for key {key!r}: the storage reported an unmet precondition"
        elif not isinstance(exc, OSError):
            raise exc  # KeyError, TypeError, ValueError, the persidict errors: already documented ones
        elif exc.errno == errno.ENAMETOOLONG:
            raise ValueError(f"Key {plain_key(key)!r} is too long for this filesystem") from exc
        elif exc.errno in (errno.EISDIR, errno.ENOTDIR) and key is not None:
            # Local folders: a key's file name is another key's folder, or the reverse
            # (with digest_len=0, key ("c.pkl", "x") needs a folder where key "c" has its file).
            raise ValueError(
                f"Key {plain_key(key)!r} cannot be stored here: its path runs into another key's "
                f"{'folder' if exc.errno == errno.EISDIR else 'file'} ({exc.filename})"
            ) from exc
        if failure is None:
            failure = f"{operation} failed" + ("" if key is None else f" for key {plain_key(key)!r}")
        self._fail_plainly(exc, operation, key, failure)
        raise BackendError(  # a storage library's text may echo a URL or a connection string: masked
            failure if isinstance(exc, PreconditionFailed) else mask_secrets(f"{failure}: {_plain(exc)}"),
            backend=self.backend.backend_name,
            operation=operation,
            key=key,
        ) from exc

    def _fail_plainly(self, exc: BaseException, operation: str, key: Any, failure: str) -> None:
        """Raise the failures people meet first in words that say what to do: a missing bucket
        (``MissingRootError``), missing credentials."""
        missing = self.backend.missing_root(exc)
        if missing is not None:
            raise MissingRootError(missing, self.backend.url, backend=self.backend.backend_name,
                                   operation=operation, key=key) from exc
        cloud = missing_credentials(exc)
        if cloud is not None:
            raise BackendError(f"{failure}: {credentials_advice(cloud)}", backend=self.backend.backend_name,
                               operation=operation, key=key) from exc

    def encode(self, value: Any) -> bytes:
        """The bytes the format stores for ``value`` (``TypeError`` if it cannot hold it)."""
        return self._codec.dumps(value)

    def _decode(self, data: bytes, key: Key) -> Any:
        try:
            value = self._decoder.from_bytes(data)
        except Undecodable as exc:
            self._undecodable(exc, key)
        return self._checked(value)

    def _undecodable(self, exc: Undecodable, key: Key) -> NoReturn:
        raise BackendError(
            f"the stored value of {key!r} is not valid {self._format}: {exc}",
            backend=self.backend.backend_name,
            operation="decode",
            key=key,
        ) from exc.__cause__

    def _checked(self, value: Any) -> Any:
        """``value``, if it is of the store's base class for values (``TypeError`` if not)."""
        base = self._base_class
        if base is not None and not isinstance(value, base):
            raise TypeError(f"Stored value is a {type(value).__name__}, expected an instance of {base.__name__}")
        return value

    # --- reads ---------------------------------------------------------------------------------
    def read(self, key: Key, *, unless_etag: str | None = None) -> tuple[Any, Version]:
        if unless_etag is None:
            return self._read_decoded(key, versioned=True)
        try:
            maybe, version = self.backend.read_if_changed(self.path(key), unless_etag)
        except FileNotFoundError as exc:
            raise MissingKeyError(key) from exc
        except Exception as exc:
            self._fail(exc, "read", key)
        return (VALUE_NOT_RETRIEVED, version) if maybe is None else (self._decode(maybe, key), version)

    def get(self, key: Key) -> Any:
        return self._read_decoded(key, versioned=False)[0]

    def _read_decoded(self, key: Key, *, versioned: bool) -> tuple[Any, Version]:
        """The key's value (decoded by the backend: from the open file where it streams) and version."""
        backend = self.backend
        try:
            if backend.streams_values:
                value, version = backend.read_decoded(self.path(key), self._decoder, versioned=versioned)
            elif versioned:  # the bytes path: one request for a value under an object store's threshold
                data, version = backend.read_versioned(self.path(key))
                value = self._decoder.from_bytes(data)
            else:
                value, version = self._decoder.from_bytes(backend.read(self.path(key))), None
        except FileNotFoundError as exc:
            raise MissingKeyError(key) from exc
        except Undecodable as exc:
            self._undecodable(exc, key)
        except Exception as exc:
            self._fail(exc, "read", key)
        return self._checked(value), version  # type: ignore[return-value]  # None only if not versioned

    def open_file(self, key: Key) -> tuple[IO[bytes], Version]:
        try:
            return self.backend.open_read(self.path(key))
        except FileNotFoundError as exc:
            raise MissingKeyError(key) from exc
        except Exception as exc:
            self._fail(exc, "read", key)

    def write_file(self, key: Key, file: IO[bytes], expected: Expected = ANY) -> str:
        return self.write(key, FileSource(file), expected)

    def stat(self, key: Key) -> Version:
        try:
            return self.backend.stat(self.path(key))
        except FileNotFoundError:
            raise MissingKeyError(key) from None
        except Exception as exc:
            self._fail(exc, "stat", key)

    def exists(self, key: Key) -> bool:
        try:
            return self.backend.exists(self.path(key))
        except FileNotFoundError:
            return False
        except Exception as exc:
            if self.backend.missing_root(exc) is not None:
                return False  # no bucket, no key: `in` answers the question it was asked
            self._fail(exc, "exists", key)

    def read_many(self, keys: Iterable[Key]) -> Iterator[tuple[Any, Version] | None]:
        keys = list(keys)
        try:
            for key, entry in zip(keys, self.backend.read_many([self.path(key) for key in keys]), strict=True):
                yield None if entry is None else (self._decode(entry[1], key), entry[2])
        except Exception as exc:
            self._fail(exc, "read")

    # --- writes ----------------------------------------------------------------------------------
    def write(self, key: Key, value: Any, expected: Expected = ANY) -> str:
        self._check_writable(key)
        path = self.path(key)
        # The layout is recorded once the value is serialized (a refused value records nothing),
        # before it is in place; a local folder serializes it straight into its temporary file.
        payload: ValuePayload | FilePayload
        if type(value) is FileSource:  # put_file: the file's bytes as they are
            payload = FilePayload(value.file, self._record_layout, self._root_for_parts)
        else:
            payload = ValuePayload(self._codec, value, self._record_layout, self._root_for_parts)
        try:
            if self.backend.streams_values:
                return self.backend.put_stream(path, payload, expected)
            return self.backend.put(path, payload.to_bytes(), expected)
        except Exception as exc:
            if isinstance(exc, PreconditionFailed) and expected is not ANY:
                raise
            self._fail(exc, "write", key)

    def delete(self, key: Key, expected: Expected = ANY) -> None:
        try:
            self.backend.remove(self.path(key), expected)
        except FileNotFoundError as exc:
            raise MissingKeyError(key) from exc
        except Exception as exc:
            if isinstance(exc, PreconditionFailed) and expected is not ANY:
                raise
            self._fail(exc, "delete", key)
        self._forget(key)

    def _forget(self, key: Key) -> None:
        """Drop the memo entries of a deleted key, so a process that churns keys stays flat."""
        forget_key(key.strings)
        self._paths.pop(key.strings, None)
        if self._keys_of_files or self._listed:  # filled only by listings
            relative = self._relative(key)
            self._keys_of_files.pop(relative, None)
            head, _, name = relative.rpartition("/")
            self._listed.forget(head, name)

    def write_many(self, items: Iterable[tuple[Key, Any]], expected: Expected = ANY) -> dict[Key, Exception]:
        """Every value is encoded first (``TypeError`` before anything is written), then written
        concurrently on object stores; the keys that failed, with their errors."""
        writes: dict[str, tuple[Key, bytes]] = {}
        for key, value in items:
            self._check_writable(key)
            writes[self.path(key)] = (key, self.encode(value))
        if writes:
            self._record_layout()
        try:
            failures = self.backend.put_many((path, data, expected) for path, (_, data) in writes.items())
        except Exception as exc:
            self._fail(exc, "write")
        return {writes[path][0]: error for path, error in failures.items()}

    def delete_many(self, keys: Iterable[Key]) -> dict[Key, Exception]:
        paths = {self.path(key): key for key in keys}
        try:
            failures = self.backend.remove_many(paths)
        except Exception as exc:
            self._fail(exc, "delete")
        for path, key in paths.items():
            if path not in failures:
                self._forget(key)
        return {paths[path]: error for path, error in failures.items()}

    def _record_layout(self) -> None:
        """Record the layout before the first write; on a lazy root, that write makes the bucket exist first.

        A store whose bucket is missing has no layout record yet, so its first
        write of any kind passes here: creating the bucket here covers them all.
        The bucket is looked at (and created) before the record is written, not
        after a failed write: not every cloud tells a missing bucket from a
        missing object, and a lost answer's check cannot tell either.
        """
        if self._layout is not None and self._layout.pending:
            if self._lazy_root:
                self.ensure_root()
            try:
                self._layout.record()
            except Exception as exc:
                self._fail(exc, "write", failure=f"cannot write to {self.backend.url}")

    def _root_for_parts(self) -> None:
        """Before the first part of a value uploaded while it is serialized: the bucket a lazy store's first
        write creates (as ``_record_layout`` does for a whole value) must exist before the value is whole."""
        if self._lazy_root and self._layout is not None and self._layout.pending:
            self.ensure_root()

    # --- listing -----------------------------------------------------------------------------------
    def list(self, *, with_timestamps: bool = False) -> Iterator[tuple[Key, float]]:
        try:
            folders = None if with_timestamps else self.backend.walk_folders(self._suffix)
            if folders is not None:  # a local folder: its names parsed folder by folder
                for head, names in folders:
                    yield from zip(self._keys_in(head, names), repeat(0.0))
                return
            for relative, timestamp in self.backend.walk(self._suffix, with_timestamps=with_timestamps):
                key = self.key_of(relative)
                if key is not None:
                    yield key, timestamp
        except Exception as exc:
            self._fail(exc, "list")

    def read_all(self) -> Iterator[tuple[Key, Any, Version]]:
        """Every item; a local folder's values are read folder by folder through the names listed
        (no key's path computed again: past the path memo that would be an md5 per key)."""
        folders = self.backend.walk_folders(self._suffix)
        if folders is None:
            yield from super().read_all()
            return
        for head, names in self._failing_as("list", folders):  # a listing's failure is the listing's, as in list()
            keys = self._keys_in(head, names)
            folder = self.backend.path_for(head + "/" if head else "")
            paths = ([folder + name for name in names] if len(keys) == len(names)
                     else [self.path(key) for key in keys])  # names that are no key's: skipped
            for key, entry in zip(keys, self._failing_as("read", self.backend.read_many(paths)), strict=True):
                if entry is not None:  # deleted since it was listed
                    yield key, self._decode(entry[1], key), entry[2]

    def _failing_as(self, operation: str, items: Iterator[T]) -> Iterator[T]:
        """``items``, a failure while they are produced raised as a failure of ``operation`` (``_fail``)."""
        try:
            yield from items
        except Exception as exc:
            self._fail(exc, operation)

    def _keys_in(self, head: str, names: Sequence[str]) -> Sequence[Key]:
        """The keys whose files are ``names`` in folder ``head`` (below the root); names that are no
        key's file are skipped, exactly as ``key_of`` skips them."""
        keys = self._listed.keys(head, names)
        if keys is None:
            keys = keys_in_folder(*self._stems_in(head, names))
            if len(keys) == len(names):  # every name a key's: listing the folder again is a lookup per name
                self._listed.remember(head, names, keys)
        return keys

    def _stems_in(self, head: str, names: Sequence[str]) -> tuple[tuple[str, ...], Sequence[str]]:
        """The key components of folder ``head``, and the last components of the keys whose files are
        ``names`` in it (none if the folder is no key's)."""
        folder = self._folders.get(head, _UNKNOWN)
        if folder is _UNKNOWN:
            folder = self._folder_of(head)
        if folder is None:
            return (), []
        return folder, signed_stems(names, self._digest_len, self._suffix)

    def known_count(self) -> int | None:
        return self.backend.count(self._suffix)  # O(1) where the backend keeps count (LocalDict)

    def count(self) -> int:
        """How many keys: kept count, else the keys of each folder counted without building them
        (a local folder, which counts again only its folders changed since), else the listing's
        length; always the number of keys ``list`` yields."""
        known = self.known_count()
        if known is not None:
            return known
        try:
            counted = self.backend.count_keys(self._suffix, self._count_in,
                                               f"keys, naming rules {NAMING_RULES}, digest_len {self._digest_len}")
        except Exception as exc:
            self._fail(exc, "list")
        return sum(1 for _ in self.list()) if counted is None else counted

    def _count_in(self, head: str, names: Sequence[str]) -> int:
        """How many keys have their files among ``names`` in folder ``head`` (``count_keys``'s counter).

        While there is room, the keys are built and remembered as a listing's are (counting the
        folder again is then a lookup per name); past it, names are parsed, no key is built."""
        if self._listed.has_room(len(names)):
            return len(self._keys_in(head, names))
        keys = self._listed.keys(head, names)
        return len(self._stems_in(head, names)[1] if keys is None else keys)

    def clear(self) -> dict[Key, Exception]:
        """Delete every item of this format under this root (other formats' files stay), batched where
        the API allows (S3: 1,000 keys per request); temporary files that writers killed mid-write left
        behind go too (those older than a minute: a live writer's are never touched)."""
        failures = self.delete_many([key for key, _ in self.list()])
        try:
            self.backend.remove_temporary_files(older_than=LIVE_WRITE_SECONDS)
            self.backend.prune_empty_dirs()
        except Exception as exc:
            self._fail(exc, "delete")
        return failures

    def remove_temporary_files(self, older_than: float) -> int:
        """Delete what writers killed mid-write left behind (see ``FsspecDict.remove_temporary_files``)."""
        try:
            return self.backend.remove_temporary_files(older_than)
        except Exception as exc:
            self._fail(exc, "gc")


def _plain(exc: BaseException) -> str:
    """An error's text for people: an ``OSError``'s words without its ``[Errno N]`` prefix."""
    if isinstance(exc, OSError) and exc.strerror:  # also "[Errno None] ..." of an OSError re-made from another
        return exc.strerror if exc.filename is None else f"{exc.strerror}: {exc.filename}"
    return str(exc)
