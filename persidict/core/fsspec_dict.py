"""FsspecDict: the one core store class, on any fsspec URL, local path or ``UPath``.

It opens a backend for the location, reads the layout recorded there
(``layout.py``), and puts a ``StoreDict`` front on an ``FsspecStore`` (keys to
paths, values through the format's codec), behind the append-only policy
layer when asked.  ``FileDirDict``, ``LocalDict`` and ``BasicS3Dict`` are the
same class opened on a preconfigured backend (``presets/``).
"""

from __future__ import annotations

import os
from typing import Any, Self

from ..backends import DEFAULT_TIMEOUT, MemoryBackend, StorageBackend, open_backend
from ..backends.transfers import Transfers
from ..codecs.registry import get_codec
from ..keys.tuples import to_nonempty_key
from ..layers.policy import AppendOnlyStore
from ..protocol.flags import ValueType
from ..protocol.retry import RetryConfig
from ..protocol.store import Store, WrapperStore
from ..protocol.versions import PreconditionFailed
from .front import NonEmptyPersiDictKey, StoreDict, check_format
from .fsspec_store import FsspecStore
from .layout import Layout, LayoutRecorder, read_layout, resolve_layout
from .settings import Location, Settings

__all__ = ["FsspecDict"]

_URL = Location("url_or_path", "url")


class FsspecDict(StoreDict[ValueType]):
    """A persistent dict on any fsspec URL, local path or ``UPath``.

    ``digest_len``, ``serialization_format`` and ``safe_json`` left out (``None``)
    adopt the layout recorded in the store (else 0, ``"pkl"``, False); given
    ones must agree with it (see ``core/layout.py``).

    Opening creates nothing remote: a bucket (or container) that does not
    exist is created by the store's first write, or at once with
    ``create_root=True``.  Until then ``k in d`` is False and every other
    operation raises ``MissingRootError`` (a ``BackendError`` naming the
    bucket, and a ``KeyError``, so ``get`` and ``setdefault`` see no key).
    A local folder is created at once, as ``FileDirDict`` does.

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
        serialization_format: str | None = None,
        append_only: bool = False,
        base_class_for_values: type | None = None,
        digest_len: int | None = None,
        safe_json: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryConfig | None = None,
        transfers: Transfers | None = None,
        create_root: bool = False,
    ) -> None:
        if isinstance(url_or_path, os.PathLike) and not hasattr(url_or_path, "storage_options"):
            url_or_path = os.fspath(url_or_path)
        params = {"url_or_path": url_or_path, "storage_options": storage_options, "timeout": timeout,
                  "serialization_format": serialization_format, "append_only": append_only,
                  "base_class_for_values": base_class_for_values, "digest_len": digest_len, "safe_json": safe_json}
        self._open_files(open_backend(url_or_path, storage_options), params, _URL, defaults=(0, "pkl"), retry=retry,
                         transfers=transfers, create_root=bool(create_root))

    def _open_files(
        self,
        backend: StorageBackend,
        params: dict[str, Any],
        location: Location,
        *,
        defaults: tuple[int, str],
        retry: RetryConfig | None = None,
        transfers: Transfers | None = None,
        create_root: bool = True,
    ) -> None:
        """Open the front on ``backend``: the constructors' shared last step.

        ``params`` are the class's own constructor parameters, as given; the
        layout ones (``digest_len``, ``serialization_format``, ``safe_json``) are
        resolved against what the store records (``defaults``: the class's
        digest length and format) and stored resolved.  Unless ``create_root``,
        a root the backend may leave missing (a bucket) waits for the first write.
        """
        digest_len = params.get("digest_len")
        _check_digest_len(digest_len)
        timeout = params.get("timeout", DEFAULT_TIMEOUT)
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        backend.timeout = float(timeout)
        if retry is not None:
            backend.retry = retry  # one policy for the front's conflict loops and the backend's requests
        backend.check_root()  # a root no storage could hold fails here, before any request
        records = not isinstance(backend, MemoryBackend)  # memory stores live and die with this process
        recorded = _read_layout_if_any(backend) if records else None
        fmt, naming = resolve_layout(recorded, digest_len=digest_len,
                                     serialization_format=params["serialization_format"],
                                     safe_json=params["safe_json"], defaults=defaults, opener=type(self).__name__,
                                     usable=lambda name: _usable(name, params["base_class_for_values"]))
        base_class = params["base_class_for_values"]
        check_format(fmt, base_class)
        layout = LayoutRecorder(backend, fmt, naming, recorded) if records else None
        lazy_root = backend.lazy_root and not create_root
        files = FsspecStore(backend, codec=get_codec(fmt, safe_json=naming.safe_json), serialization_format=fmt,
                            digest_len=naming.digest_len, base_class_for_values=base_class, layout=layout,
                            lazy_root=lazy_root)
        if not lazy_root:
            files.ensure_root()
        store: Store = AppendOnlyStore(files) if params["append_only"] else files
        resolved = {"serialization_format": fmt, "append_only": bool(params["append_only"]),
                    "safe_json": naming.safe_json}
        if "digest_len" in params:
            resolved["digest_len"] = naming.digest_len
        if retry is not None:
            resolved["retry"] = retry
        if transfers is not None:
            resolved["transfers"] = _use_transfers(backend, transfers)
        self._open(store, Settings(type(self), {**params, **resolved}, location), base_class_for_values=base_class,
                   serialization_format=fmt, retry=retry)

    # --- what only stores on files have ------------------------------------------------------
    @property
    def _files(self) -> FsspecStore:
        store = self._store
        while isinstance(store, WrapperStore):
            store = store.inner
        return store  # type: ignore[return-value]

    @property
    def _backend(self) -> StorageBackend:
        """The storage backend below the store (for tools and tests that work at the byte level)."""
        return self._files.backend

    @property
    def fs(self) -> Any:
        """The fsspec filesystem holding the values."""
        return self._files.backend.fs

    @property
    def url(self) -> str:
        """The store's root as a protocol-qualified URL."""
        return self._files.backend.url

    @property
    def timeout(self) -> float:
        """Seconds one call to remote storage may take, retries included, before ``BackendError``."""
        return self._files.backend.timeout

    @property
    def digest_len(self) -> int:
        """The length of the digest suffix of every file name component (0: none)."""
        return self._files.digest_len

    @property
    def safe_json(self) -> bool:
        """Whether a ``json`` store reads and writes safe typed JSON (no object is ever built on read)."""
        return bool(self._settings.params["safe_json"])

    def key_to_path(self, key: NonEmptyPersiDictKey) -> str:
        """The path in ``self.fs`` where the value of ``key`` is stored."""
        return self._files.path(to_nonempty_key(key))

    def key_to_url(self, key: NonEmptyPersiDictKey) -> str:
        """The protocol-qualified URL of the value of ``key`` (``file:///...``, ``s3://...``), for other tools.

        ``pd.read_parquet(d.key_to_url(k), storage_options=...)`` or DuckDB's
        ``read_parquet`` open the stored file itself (the ``parquet`` and ``npy``
        formats write files that need no persidict to read).
        """
        return str(self.fs.unstrip_protocol(self.key_to_path(key)))

    def get_subdict(self, prefix_key: Any) -> Self:
        """The items whose keys start with ``prefix_key``, as a dict of the same class (derived, not reopened)."""
        try:
            return super().get_subdict(prefix_key)
        except (OSError, PreconditionFailed) as exc:  # the storage failed while the child's location was derived
            self._files._fail(exc, "init")

    def remove_temporary_files(self, *, older_than: float = 3600.0) -> int:
        """Delete what writers killed mid-write left behind: hidden temporary files
        (``.__tmp__*``) older than ``older_than`` seconds.  Returns how many were removed.

        Only local folders and generic filesystems have them (object stores write
        in one request); the command line's ``gc`` calls this.
        """
        return self._files.remove_temporary_files(older_than)

    def with_local_cache(
        self, base_dir: str | os.PathLike[str], *, digest_len: int = 8, max_bytes: int | None = None
    ) -> StoreDict[ValueType]:
        """This store behind a read-through cache in the local folder ``base_dir``.

        Meant for remote stores: a cached value is validated with one
        conditional request that transfers no body while it is unchanged
        (append-only stores trust the cache and send none).  ``max_bytes``
        bounds the cache folder (least recently used copies are evicted).
        """
        from ..presets.cached import with_local_cache

        return with_local_cache(self, base_dir=base_dir, digest_len=digest_len, max_bytes=max_bytes)

    def __reduce__(self) -> tuple[Any, ...]:
        if isinstance(self._files.backend, MemoryBackend):
            raise TypeError(
                f"{type(self).__name__} lives in this process's memory: in another process it would be a "
                "different, empty store. Pass a store on shared storage to workers instead: a FileDirDict on "
                "a shared folder, or an s3://, gs:// or az:// FsspecDict"
            )
        return super().__reduce__()


def _read_layout_if_any(backend: StorageBackend) -> Layout | None:
    """The layout recorded at the backend's root, or None (also if it cannot be read: a read-only
    archive, a foreign file of that name; the store then opens as persidict 0.x would)."""
    try:
        return read_layout(backend)
    except (OSError, ValueError):
        return None


def _usable(serialization_format: str, base_class_for_values: type | None) -> bool:
    """Whether a store with this value class can hold the format's values."""
    try:
        check_format(serialization_format, base_class_for_values)
    except (TypeError, ValueError):
        return False
    return True


def _check_digest_len(digest_len: Any) -> None:
    if digest_len is None:
        return
    if isinstance(digest_len, bool) or not isinstance(digest_len, int):
        raise TypeError(f"digest_len must be an int, got {digest_len!r}")
    if digest_len < 0:
        raise ValueError(f"digest_len must be >= 0, got {digest_len}")


def _use_transfers(backend: StorageBackend, transfers: Transfers) -> Transfers:
    """Give ``backend`` the store's part sizes and read budget (object stores use them)."""
    if not isinstance(transfers, Transfers):
        raise TypeError(f"transfers must be a persidict.Transfers, got {type(transfers).__name__}")
    backend.transfers = transfers  # type: ignore[attr-defined]
    return transfers
