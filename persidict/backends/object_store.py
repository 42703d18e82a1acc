"""What the cloud backends (S3, GCS, Azure) share: one template, one request runner.

A cloud backend is a bucket (or container) and a key prefix.  Each cloud
module supplies only its SDK calls (``_get``, ``_head``, ``_put_object``,
``_delete_object``, ``_list_page``, the bucket check and creation) and its
error table (``_outcome``: what an SDK exception means); everything else is
here, once:

- **Retries are ours.**  The SDKs' own retries are switched off where we can
  (botocore, azure-core) or bypassed (s3fs, gcsfs), because a blind resend of
  a conditional request meets its own result: a resent ``If-None-Match: *``
  PUT whose first answer was lost gets 412 and would report a write that
  happened as one that did not.  ``_run`` sends a request again only when
  that is safe: when the service refused it (throttling), when it never left
  (no connection), or when the answer was lost and the request is idempotent
  or can be reconciled.
- **Lost answers are reconciled.**  Every write carries a random write id and
  the lineage of the version it replaces in the object's metadata
  (``lineage``).  When a conditional write whose earlier attempt may have
  been applied is then refused (412/404), ``_run`` reads the object's
  metadata instead of reporting the refusal: if our write id is there, the
  write happened and its ETag is returned.  A conditional delete refused after
  a lost answer counts as done if the object is gone.
- **Every call has a deadline** (``timeout`` seconds, retries included), after
  which it fails: a server that accepts connections and never answers costs
  ``timeout``, not minutes.
- Bulk reads fetch many values concurrently, bounded, batch by batch.
- Forked children rebuild their filesystem object: SDK clients and event
  loops do not survive ``fork``.

Backends raise ``FileNotFoundError`` for a missing object,
``PreconditionFailed`` for an unmet precondition and ``OSError`` for any
other failure (a missing bucket included, named in the message); the store's
error boundary turns the last into ``BackendError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import enum
import errno
import functools
import os
import random
import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from fsspec.asyn import sync

from ..protocol.versions import ABSENT, ANY, Expected, PreconditionFailed, Version
from .base import StorageBackend
from .lineage import Lineages

__all__ = ["CONCURRENT_REQUESTS", "READ_BATCH", "ObjectStoreBackend", "Outcome", "forbid_hidden_resends", "http_date"]

T = TypeVar("T")
Metadata = Mapping[str, str] | None

CONCURRENT_REQUESTS = 32
"""Requests in flight at once in a bulk read, write or delete (a real region's round trip is ~20 ms)."""

READ_BATCH = 8 * CONCURRENT_REQUESTS
"""Values fetched per round of a bulk read: bounds memory, keeps every connection busy."""

DELETE_ATTEMPTS = 16
"""Rounds of an unconditional delete of an object that other writers keep replacing."""

LOST_ANSWER_ATTEMPTS = 5
"""Sends of a request whose answers keep getting lost (5xx, resets, timeouts)."""

UNREACHABLE_ATTEMPTS = 3
"""Sends of a request that cannot connect: a dead endpoint fails in about a second."""

FIRST_BACKOFF = 0.1
MAX_BACKOFF = 2.0


class Outcome(enum.Enum):
    """What a failed request means, as each cloud's error table (``_outcome``) tells."""

    NOT_FOUND = "the object does not exist"
    CONFLICT = "the precondition failed"
    BUCKET_MISSING = "the bucket does not exist"
    DENIED = "access denied"
    REFUSED = "the service refused it (throttling): not applied"
    UNREACHABLE = "no connection: never sent"
    LOST = "the answer was lost: it may have been applied"
    FAILED = "failed for good"


class ObjectStoreBackend(StorageBackend):
    """A bucket (or container) and a key prefix ending in ``/`` (or empty)."""

    atomic_conditions = True
    metadata_keys = ("persidict-write", "persidict-lineage")
    """The metadata names of a write's id and its lineage (clouds differ in what they allow)."""

    def __init__(self, fs: Any, root: str) -> None:
        self._fs: Any = fs
        super().__init__(fs, root)
        self._lineages = Lineages(*self.metadata_keys)
        self.bucket, _, prefix = self.root.partition("/")
        self.prefix = prefix + "/" if prefix else ""
        self._bucket_checked = False
        self._pid = os.getpid()

    @property
    def fs(self) -> Any:
        """The filesystem, rebuilt in a forked child (SDK clients and event loops do not survive fork)."""
        if self._pid != os.getpid():
            self._fs = type(self._fs)(**self._fs.storage_options)
            self._pid = os.getpid()
        return self._fs

    @fs.setter
    def fs(self, fs: Any) -> None:
        self._fs = fs

    def child(self, relative: str) -> ObjectStoreBackend:
        """The same bucket one prefix down; it shares what this backend has learned."""
        child = copy.copy(self)
        child.root = self.path_for(relative)
        child.prefix = child.root.partition("/")[2] + "/"
        return child

    def _name(self, path: str) -> str:
        """The object's name inside the bucket."""
        return path.partition("/")[2]

    # --- what each cloud supplies ------------------------------------------------------
    @abstractmethod
    def _outcome(self, exc: BaseException) -> Outcome:
        """The meaning of an exception raised by one of the SDK calls below."""

    @abstractmethod
    async def _get(self, name: str, if_none_match: str | None = None) -> tuple[bytes | None, Version, Metadata]:
        """One GET of a value, its version and its metadata (``None`` bytes if ``if_none_match`` still matches)."""

    @abstractmethod
    async def _head(self, name: str) -> tuple[Version, Metadata]:
        """The object's version and metadata."""

    @abstractmethod
    async def _put_object(self, name: str, data: bytes, expected: Expected, metadata: dict[str, str]) -> str:
        """One write carrying ``expected`` as its precondition and ``metadata``; the new ETag."""

    @abstractmethod
    async def _delete_object(self, name: str, expected: Expected) -> None:
        """One delete, conditional unless ``expected`` is ``ANY``."""

    @abstractmethod
    async def _list_page(self, token: str | None) -> tuple[list[tuple[str, float]], str | None]:
        """One page of ``(name, timestamp)`` under the prefix, and the token of the next page."""

    @abstractmethod
    async def _bucket_exists(self) -> bool:
        """Whether the bucket exists (True if we may not ask, so the first real request decides)."""

    @abstractmethod
    async def _create_bucket(self) -> None:
        """Create the bucket; one that someone else created meanwhile is fine."""

    # --- the request runner ---------------------------------------------------------------
    def _run(
        self,
        request: Callable[[], Awaitable[T]],
        what: str,
        *,
        conditional: bool = False,
        changes: bool = False,
        reconcile: Callable[[], Awaitable[T]] | None = None,
    ) -> T:
        """Run ``request()`` on the SDK's loop: retried where safe, reconciled, bounded by ``timeout``.

        A ``conditional`` request may fail its precondition (``PreconditionFailed``);
        on any other, a 412 is a plain failure.  A request that ``changes`` the
        object and runs out of time may have been applied, and the error says so.  ``reconcile`` finds out, after a
        lost answer, whether a conditional request was applied: it returns the
        request's result if so, and raises ``PreconditionFailed`` if not.
        """
        deadline = time.monotonic() + self.timeout
        lost = False
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                maybe = " (it may have been applied)" if lost and changes else ""
                raise TimeoutError(errno.ETIMEDOUT, f"{what}: no answer within {self.timeout:g} s{maybe}")
            try:
                return sync(self.fs.loop, _within, request, remaining)  # type: ignore[no-any-return]
            except (PreconditionFailed, FileNotFoundError):
                raise  # our own answers (a reconcile's, or one a cloud module already classified)
            except Exception as exc:
                outcome = Outcome.LOST if isinstance(exc, asyncio.TimeoutError) else self._outcome(exc)
                if outcome is Outcome.CONFLICT and not conditional:
                    outcome = Outcome.FAILED
                if outcome in (Outcome.NOT_FOUND, Outcome.CONFLICT):
                    if lost and reconcile is not None:
                        request, reconcile = reconcile, None  # ask what really happened
                        continue
                    if outcome is Outcome.NOT_FOUND:
                        raise FileNotFoundError(errno.ENOENT, "No such object", what) from exc
                    raise PreconditionFailed(what) from exc
                if outcome is Outcome.BUCKET_MISSING:
                    raise OSError(f"{what}: the bucket {self.bucket!r} does not exist") from exc
                if outcome is Outcome.DENIED:
                    raise PermissionError(errno.EACCES, f"{what}: {outcome.value}: {exc}") from exc
                if not _may_send_again(outcome, attempt):
                    raise OSError(errno.EIO, f"{what}: {outcome.value}: {type(exc).__name__}: {exc}") from exc
                lost = lost or outcome is Outcome.LOST
            pause = min(FIRST_BACKOFF * 2**attempt, MAX_BACKOFF) * random.uniform(0.5, 1.0)  # jittered
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            attempt += 1

    # --- reads ------------------------------------------------------------------------------
    def read(self, path: str) -> bytes:
        # No lineage to learn: the caller gets no ETag, so no write of theirs can start from this version.
        data, _, _ = self._run(lambda: self._get(self._name(path)), f"read {path}")
        return data or b""

    def read_versioned(self, path: str) -> tuple[bytes, Version]:
        data, version = self._run(lambda: self._get_learning(self._name(path)), f"read {path}")
        return data or b"", version

    def read_if_changed(self, path: str, etag: str) -> tuple[bytes | None, Version]:
        if not etag:
            return self.read_versioned(path)  # no object's ETag is empty
        return self._run(lambda: self._get_learning(self._name(path), etag), f"read {path}")

    def stat(self, path: str) -> Version:
        return self._run(lambda: self._head_learning(self._name(path)), f"stat {path}")

    async def _get_learning(self, name: str, if_none_match: str | None = None) -> tuple[bytes | None, Version]:
        """``_get``, remembering the lineage of the version read (a later write replaces it)."""
        data, version, metadata = await self._get(name, if_none_match)
        self._lineages.learn(name, version.etag, metadata)
        return data, version

    async def _head_learning(self, name: str) -> Version:
        version, metadata = await self._head(name)
        self._lineages.learn(name, version.etag, metadata)
        return version

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except FileNotFoundError:
            return False
        return True

    def read_many(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes, Version] | None]:
        """Fetch many values concurrently, at most ``CONCURRENT_REQUESTS`` requests in flight.

        Values come in batches of ``READ_BATCH``, so iterating over a huge store
        holds one batch in memory, not the whole store.
        """
        paths = list(paths)
        for start in range(0, len(paths), READ_BATCH):
            batch = paths[start : start + READ_BATCH]
            yield from self._run(functools.partial(self._read_batch, batch), f"read {len(batch)} values")

    async def _read_batch(self, paths: list[str]) -> list[tuple[str, bytes, Version] | None]:
        limit = asyncio.Semaphore(CONCURRENT_REQUESTS)

        async def one(path: str) -> tuple[str, bytes, Version] | None:
            async with limit:
                try:
                    data, version = await self._get_learning(self._name(path))
                except Exception as exc:
                    if self._outcome(exc) is Outcome.NOT_FOUND:
                        return None  # deleted since it was listed
                    raise
                return path, data or b"", version

        tasks = [asyncio.ensure_future(one(path)) for path in paths]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:  # gather leaves the others running: a retry must not meet them
                task.cancel()
            raise

    # --- writes -------------------------------------------------------------------------------
    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        if expected == "":
            raise PreconditionFailed(path)  # no object's ETag is empty (and HTTP clients drop empty headers)
        name, write_id = self._name(path), Lineages.new_write_id()
        metadata = self._lineages.metadata_for(name, expected if isinstance(expected, str) else None, write_id)
        try:
            return self._run(
                lambda: self._put_written(name, data, expected, metadata),
                f"write {path}",
                conditional=expected is not ANY,
                changes=True,
                reconcile=None if expected is ANY else lambda: self._confirm_write(name, write_id),
            )
        except FileNotFoundError as exc:  # If-Match on a missing object: that version is gone too
            raise PreconditionFailed(path) from exc

    async def _put_written(self, name: str, data: bytes, expected: Expected, metadata: dict[str, str]) -> str:
        etag = await self._put_object(name, data, expected, metadata)
        self._lineages.learn(name, etag, metadata)
        return etag

    async def _confirm_write(self, name: str, write_id: str) -> str:
        """After a lost answer: the ETag of our write if it happened, else ``PreconditionFailed``."""
        try:
            version, metadata = await self._head(name)
        except Exception as exc:
            if self._outcome(exc) is Outcome.NOT_FOUND:
                raise PreconditionFailed(name) from exc
            raise
        etag = self._lineages.our_etag(write_id, version.etag, metadata)
        if etag is None:
            raise PreconditionFailed(name)
        self._lineages.learn(name, version.etag, metadata)
        return etag

    def remove(self, path: str, expected: Expected = ANY) -> None:
        if expected is ABSENT or expected == "":
            raise PreconditionFailed(path)
        name = self._name(path)
        conflict: PreconditionFailed | None = None
        for _ in range(DELETE_ATTEMPTS if expected is ANY else 1):
            try:
                self._run(
                    lambda: self._delete_object(name, expected),
                    f"delete {path}",
                    conditional=True,  # S3 pins even an unconditional delete to the version it saw
                    changes=True,
                    reconcile=lambda: self._confirm_delete(name),
                )
                return
            except PreconditionFailed as exc:
                if expected is not ANY:
                    raise
                conflict = exc  # deleting whatever is there, and another writer replaced it meanwhile: again
        raise OSError(errno.EAGAIN, f"delete {path}: other writers kept replacing it") from conflict

    def put_many(self, writes: Iterable[tuple[str, bytes, Expected]]) -> dict[str, Exception]:
        """``put`` concurrently, at most ``CONCURRENT_REQUESTS`` in flight, each with its own retries."""
        return _concurrently(lambda write: self.put(*write), list(writes), key=lambda write: write[0])

    def remove_many(self, paths: Iterable[str]) -> dict[str, Exception]:
        """Delete concurrently, one request per object (S3 overrides this with batch deletes)."""

        def remove(path: str) -> None:
            with contextlib.suppress(FileNotFoundError):
                self.remove(path)

        return _concurrently(remove, list(paths), key=lambda path: path)

    async def _confirm_delete(self, name: str) -> None:
        """After a lost answer: done if the object is gone (our delete, or one just like it)."""
        try:
            await self._head(name)
        except Exception as exc:
            if self._outcome(exc) is Outcome.NOT_FOUND:
                return
            raise
        raise PreconditionFailed(name)

    # --- listing and the bucket -------------------------------------------------------------
    def walk(self, suffix: str, *, with_timestamps: bool) -> Iterator[tuple[str, float]]:
        start = len(self.prefix)
        token: str | None = None
        while True:
            page, token = self._run(functools.partial(self._list_page, token), f"list {self.url}")
            for name, timestamp in page:
                if name.endswith(suffix):
                    yield name[start:], timestamp if with_timestamps else 0.0
            if not token:
                return

    def ensure_root(self) -> None:
        """Create the bucket if it does not exist."""
        if self._bucket_checked:
            return
        if not self._run(self._bucket_exists, f"check the bucket {self.bucket!r}"):
            self._run(self._create_bucket, f"create the bucket {self.bucket!r}")
        self._bucket_checked = True


def _concurrently(action: Callable[[Any], object], items: list[Any], key: Callable[[Any], str]) -> dict[str, Exception]:
    """Run ``action`` on every item from a bounded pool of threads; the failures by ``key(item)``.

    Each call is a whole ``_run`` (its own retries, reconciliation and
    deadline), which blocks its thread while the SDK's event loop serves
    all of them at once.
    """
    from concurrent.futures import ThreadPoolExecutor  # only bulk operations need it

    failures: dict[str, Exception] = {}
    if not items:
        return failures
    with ThreadPoolExecutor(min(CONCURRENT_REQUESTS, len(items))) as pool:
        futures = {pool.submit(action, item): key(item) for item in items}
        for future, name in futures.items():
            error = future.exception()
            if isinstance(error, (OSError, PreconditionFailed)):
                failures[name] = error
            elif error is not None:
                raise error
    return failures


def http_date(value: str | None) -> float:
    """The POSIX time of an HTTP date header (``Last-Modified``); 0.0 if there is none."""
    return parsedate_to_datetime(value).timestamp() if value else 0.0


def forbid_hidden_resends(session: Any) -> None:
    """Stop an aiohttp session from resending a PUT or DELETE on its own.

    aiohttp sends an idempotent request again, once and silently, when its
    connection drops (RFC 9112 allows it).  For a conditional request that
    hides a lost answer: the resend meets its own result and is refused, and
    nothing tells us the first one was applied.  Only ``_run`` may resend.
    (``_retry_connection`` is aiohttp's private switch for this; without it
    an older aiohttp never resends.)
    """
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False


def _may_send_again(outcome: Outcome, attempt: int) -> bool:
    """Whether sending a request again is safe and worth it.

    Every request is either idempotent (reads, listings, unconditional
    writes) or reconcilable (conditional writes and deletes), so a lost
    answer may always be followed by a resend.
    """
    if outcome is Outcome.REFUSED:
        return True  # until the deadline: the service asked us to slow down
    if outcome is Outcome.UNREACHABLE:
        return attempt + 1 < UNREACHABLE_ATTEMPTS
    if outcome is Outcome.LOST:
        return attempt + 1 < LOST_ANSWER_ATTEMPTS
    return False


async def _within(request: Callable[[], Awaitable[T]], seconds: float) -> T:
    """``request()``, cancelled after ``seconds`` (``asyncio.TimeoutError``)."""
    return await asyncio.wait_for(request(), seconds)
