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
- **Lost answers are reconciled, at once.**  Every write carries a random
  write id and the chain of versions it replaces in the object's metadata
  (``lineage``).  Right after a lost answer, before any pause or resend,
  ``_run`` reads the object and settles what happened: applied (our write id
  is in the chain: its ETag is returned), not applied yet (what we expected
  is still there: sending again is safe), or refused (what we expected was
  replaced by another writer).  Reading at once matters: the chain is
  bounded, and writers landing on top during a pause would push our write
  out of it.  A later refusal (412/404) is reconciled again, whatever came
  between (throttling, no connection), so a lost answer is never forgotten.
  A delete counts as done if the object is gone.  Only when the evidence is
  gone (another writer deleted or blindly replaced the object meanwhile) or
  cannot be read does the error say the request may have been applied; a
  ``PreconditionFailed`` always means nothing was applied.
- **Every call has a deadline** (``timeout`` seconds, retries included), after
  which it fails: a server that accepts connections and never answers costs
  ``timeout``, not minutes.
- Bulk reads fetch many values concurrently, within a budget of bytes, in order.
- Forked children rebuild their filesystem object: SDK clients and event
  loops do not survive ``fork``.

Backends raise ``FileNotFoundError`` for a missing object,
``PreconditionFailed`` for an unmet precondition and ``OSError`` for any
other failure (a missing bucket included, named in the message); the store's
error boundary turns the last into ``BackendError``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import dataclasses
import enum
import errno
import functools
import os
import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from fsspec.asyn import sync

from ..protocol.retry import RetryConfig
from ..protocol.versions import ABSENT, ANY, Expected, PreconditionFailed, Version
from .base import ReplacedMidRead, StorageBackend
from .bulk_reads import read_within_budget
from .lineage import EvidenceGone, Lineages, Verdict, shared_lineages
from .transfers import Transfers

__all__ = ["CONCURRENT_REQUESTS", "ObjectStoreBackend", "Outcome", "forbid_hidden_resends", "http_date", "within"]

T = TypeVar("T")
Metadata = Mapping[str, str] | None
Commit = Callable[[Expected], Awaitable[str]]
"""The request that writes a value under a precondition (``Expected``) and returns the new ETag."""
Stage = Callable[[dict[str, str]], contextlib.AbstractContextManager[bytes | Commit]]
"""Sends what a write needs before its conditional request, given the write's metadata (see ``_staged``)."""

CONCURRENT_REQUESTS = 32
"""Requests in flight at once in a bulk read, write or delete (a real region's round trip is ~20 ms)."""

DELETE_ATTEMPTS = 16
"""Rounds of an unconditional delete of an object that other writers keep replacing."""

UNREACHABLE_ATTEMPTS = 3
"""Sends of a request that cannot connect: a dead endpoint fails in about a second."""

RECONCILE_SHARE = 0.2
"""The share of ``timeout`` a change keeps for the read that reconciles its last lost answer."""

CHECK_FIRST_BACKOFF = 0.005
"""The bound of the first pause of a read that checks a lost answer: other writers landing meanwhile push
our write out of the object's chain of versions, so it is retried at once, not after tenths of a second."""


class Outcome(enum.Enum):
    """What a failed request means, as each cloud's error table (``_outcome``) tells."""

    NOT_FOUND = "the object does not exist"
    CONFLICT = "the precondition failed"
    BUCKET_MISSING = "the bucket does not exist"
    DENIED = "access denied"
    REFUSED = "the service refused it (throttling): not applied"
    UNREACHABLE = "no connection: never sent"
    LOST = "the answer was lost"
    FAILED = "the request failed"


class ObjectStoreBackend(StorageBackend):
    """A bucket (or container) and a key prefix ending in ``/`` (or empty)."""

    atomic_conditions = True
    lazy_root = True
    """A store opened by ``FsspecDict`` creates its bucket on its first write (or at once with ``create_root``)."""
    root_kind = "bucket"
    metadata_keys = ("persidict-write", "persidict-lineage")
    """The metadata names of a write's id and its lineage (clouds differ in what they allow)."""
    transfers = Transfers()
    """Part sizes and the byte budget of bulk reads (set per store by its ``transfers`` parameter)."""

    def __init__(self, fs: Any, root: str) -> None:
        self._fs: Any = fs
        super().__init__(fs, root)
        self.bucket, _, prefix = self.root.partition("/")
        self._lineages = shared_lineages(fs, self.bucket, *self.metadata_keys)
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

    async def _get(self, name: str, if_none_match: str | None = None) -> tuple[bytes | None, Version, Metadata]:
        """One GET of a value, its version and its metadata (``None`` bytes if ``if_none_match`` still matches).

        Every cloud supplies it, unless it overrides ``_fetch`` (S3).
        """
        raise NotImplementedError

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
        reconcile: Callable[[], Awaitable[tuple[Verdict, T | None]]] | None = None,
        deadline: float | None = None,
        pauses: RetryConfig | None = None,
    ) -> T:
        """Run ``request()`` on the SDK's loop: retried where safe, settled, bounded by ``timeout``.

        A ``conditional`` request may fail its precondition; on any other a 412
        is a plain failure.  ``reconcile`` (every change has one) reads what is
        stored and tells whether the request was applied: at once after every
        lost answer, and again when a later attempt is refused (412, 404)
        whatever came between, since the earlier request may have landed late.
        Pauses between attempts follow ``pauses`` (the store's ``RetryConfig`` by
        default), and lost answers get its ``request_attempts`` sends.
        """
        deadline = time.monotonic() + self.timeout if deadline is None else deadline
        reserve = 0.0 if reconcile is None else RECONCILE_SHARE * self.timeout  # time kept for the last check
        lost = False  # some attempt's answer was lost: never forgotten
        fresh = False  # a check has run since the last attempt
        sent: collections.Counter[Outcome] = collections.Counter()  # failed attempts, by outcome
        attempt = 0
        while True:
            remaining = deadline - reserve - time.monotonic()
            if remaining <= 0:
                timeout = TimeoutError(errno.ETIMEDOUT, f"{what}: no answer within {self.timeout:g} s")
                return self._last_word(reconcile, what, deadline, timeout, lost=lost, fresh=fresh)
            try:
                return sync(self.fs.loop, within, request, remaining)  # type: ignore[no-any-return]
            except (PreconditionFailed, FileNotFoundError, EvidenceGone, ReplacedMidRead):
                raise  # our own answers (a check's, or one a cloud module already classified)
            except Exception as exc:
                outcome = self._meaning(exc, what, conditional)
                lost, fresh = lost or outcome is Outcome.LOST, False
                if lost and reconcile is not None and outcome in (Outcome.LOST, Outcome.NOT_FOUND, Outcome.CONFLICT):
                    verdict, result = self._check(reconcile, what, deadline, exc)
                    if verdict is Verdict.APPLIED:
                        return result  # type: ignore[return-value]
                    if verdict is Verdict.REFUSED or outcome is not Outcome.LOST:
                        raise PreconditionFailed(what) from exc  # refused, and proven not ours
                    fresh = True  # not applied (yet): sending it again is safe
                elif outcome in (Outcome.NOT_FOUND, Outcome.CONFLICT):
                    raise _refusal(outcome, what) from exc
                sent[outcome] += 1
                if not _may_send_again(outcome, sent[outcome], self.retry.request_attempts):
                    failure = _failure(what, outcome, exc)
                    return self._last_word(reconcile, what, deadline, failure, lost=lost, fresh=fresh)
            _pause(pauses or self.retry, attempt, deadline - reserve)
            attempt += 1

    def _last_word(
        self,
        reconcile: Callable[[], Awaitable[tuple[Verdict, T | None]]] | None,
        what: str,
        deadline: float,
        failure: OSError,
        *,
        lost: bool,
        fresh: bool,
    ) -> T:
        """Give up on a request; a change whose answer was ever lost first gets a definite outcome.

        Unless a check has just run, one more look settles it (attempts since
        the last check may have met a request of ours that landed late): our
        result if it was applied, ``PreconditionFailed`` if it was refused, else
        ``failure`` saying that it was not applied.
        """
        if reconcile is None or not lost:
            raise failure  # a read, or no attempt can have been applied
        if not fresh:
            verdict, result = self._check(reconcile, what, deadline, failure)
            if verdict is Verdict.APPLIED:
                return result  # type: ignore[return-value]
            if verdict is Verdict.REFUSED:
                raise PreconditionFailed(what) from failure
        raise type(failure)(failure.errno, f"{failure.strerror} (checked: not applied)") from failure.__cause__

    def _meaning(self, exc: Exception, what: str, conditional: bool) -> Outcome:
        """The outcome of a failed attempt; the failures nothing can fix are raised here."""
        outcome = Outcome.LOST if isinstance(exc, asyncio.TimeoutError) else self._outcome(exc)
        if outcome is Outcome.CONFLICT and not conditional:
            outcome = Outcome.FAILED
        if outcome is Outcome.BUCKET_MISSING:
            raise OSError(f"{what}: the bucket {self.bucket!r} does not exist") from exc
        if outcome is Outcome.DENIED:
            raise PermissionError(errno.EACCES, f"{what}: {outcome.value}: {exc}") from exc
        return outcome

    def _check(
        self, reconcile: Callable[[], Awaitable[tuple[Verdict, T | None]]], what: str, deadline: float, lost: Exception
    ) -> tuple[Verdict, T | None]:
        """Read what is stored and tell what became of a request whose answer was lost.

        The read has its own retries within the same deadline, after pauses of
        milliseconds: the evidence it looks for fades as other writers land.  A
        read that fails, or evidence that is gone, leaves the outcome unknown,
        and the error says so.
        """
        try:
            checking = f"{what}: checking whether it was applied"
            quick = dataclasses.replace(self.retry, init_backoff=min(self.retry.init_backoff, CHECK_FIRST_BACKOFF))
            return self._run(reconcile, checking, deadline=deadline, pauses=quick)
        except EvidenceGone as exc:
            raise OSError(errno.EIO, f"{what}: {Outcome.LOST.value}, and {Verdict.UNKNOWN.value}: {exc} (other "
                          "writers replaced or deleted it meanwhile), so it may have been applied") from lost
        except OSError as exc:
            message = f"{what}: {Outcome.LOST.value}, and checking failed, so it may have been applied ({exc})"
            raise type(exc)(exc.errno, message) from lost

    # --- reads ------------------------------------------------------------------------------
    def read(self, path: str) -> bytes:
        # No lineage to learn: the caller gets no ETag, so no write of theirs can start from this version.
        return self._fetch(path, learn=False)[0] or b""

    def read_versioned(self, path: str) -> tuple[bytes, Version]:
        data, version = self._fetch(path)
        return data or b"", version

    def read_if_changed(self, path: str, etag: str) -> tuple[bytes | None, Version]:
        if not etag:
            return self.read_versioned(path)  # no object's ETag is empty
        return self._fetch(path, etag)

    def _fetch(
        self, path: str, if_none_match: str | None = None, *, learn: bool = True
    ) -> tuple[bytes | None, Version]:
        """The bytes at ``path`` (None if ``if_none_match`` still matches) and their version: one ``_get``
        here; a cloud that reads big values in several requests (S3) overrides this instead."""
        name = self._name(path)

        async def get() -> tuple[bytes | None, Version]:
            if learn:
                return await self._get_learning(name, if_none_match)
            data, version, _ = await self._get(name, if_none_match)
            return data, version

        return self._restarting(path, lambda: self._run(get, f"read {path}"))

    def _restarting(self, path: str, read: Callable[[], T]) -> T:
        """``read()``, started again while other writers replace the value mid-read (``ReplacedMidRead``), as
        long as the store's ``RetryConfig`` lets a conflict loop go on; then ``ReplacedMidRead`` with the count."""
        rounds = self.retry.rounds()
        for _ in rounds:
            try:
                return read()
            except ReplacedMidRead:
                continue
        replaced = ReplacedMidRead(errno.ESTALE, f"read {path}: other writers replaced it while it was read, "
                                                 f"{rounds.attempts} time(s)")
        replaced.attempts = rounds.attempts
        raise replaced

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
        """Fetch many values concurrently, in order, holding at most ``transfers.read_budget`` bytes.

        At most ``CONCURRENT_REQUESTS`` requests are in flight, each with its
        own retries and deadline (``bulk_reads`` says how the bytes are
        counted), and each value is handed over as soon as it and those before
        it have arrived.
        """

        def fetch(path: str) -> tuple[str, bytes, Version] | None:
            try:
                data, version = self.read_versioned(path)
            except FileNotFoundError:
                return None  # deleted since it was listed
            return path, data, version

        return read_within_budget(fetch, list(paths), budget=self.transfers.read_budget,
                                  size_of=lambda entry: 0 if entry is None else len(entry[1]),
                                  concurrency=CONCURRENT_REQUESTS)

    # --- writes -------------------------------------------------------------------------------
    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        return self._write(path, expected, lambda metadata: self._staged(path, data, metadata))

    def _write(self, path: str, expected: Expected, stage: Stage) -> str:
        """One write under ``expected``, its body sent by ``stage(metadata)`` (see ``_staged``); the new ETag."""
        if expected == "":
            raise PreconditionFailed(path)  # no object's ETag is empty (and HTTP clients drop empty headers)
        name, write_id = self._name(path), Lineages.new_write_id()
        replaced = expected if isinstance(expected, str) else None
        metadata = self._lineages.metadata_for(name, replaced, write_id, insert=expected is ABSENT)
        sent = self._lineages.mark(name, replaced)
        try:
            with stage(metadata) as staged:
                return self._run(
                    lambda: self._put_written(name, staged, expected, metadata),
                    f"write {path}",
                    conditional=expected is not ANY,
                    reconcile=lambda: self._confirm_write(name, write_id, expected, sent),
                )
        except FileNotFoundError as exc:  # If-Match on a missing object: that version is gone too
            raise PreconditionFailed(path) from exc

    @contextlib.contextmanager
    def _staged(self, path: str, data: bytes, metadata: dict[str, str]) -> Iterator[bytes | Commit]:
        """What the write's one conditional request sends, after whatever must be sent first.

        Here the whole body, in one request; a backend that uploads large
        values in parts (S3) sends the parts first, yields the request that
        completes the upload with the precondition, and cleans up the parts
        if that never succeeds.
        """
        yield data

    async def _put_written(self, name: str, data: bytes | Commit, expected: Expected, metadata: dict[str, str]) -> str:
        """Write ``data`` (or complete a staged upload) under ``expected``; learn the new version's lineage."""
        if callable(data):
            etag = await data(expected)
        else:
            etag = await self._put_object(name, data, expected, metadata)
        self._lineages.learn(name, etag, metadata)
        return etag

    async def _confirm_write(
        self, name: str, write_id: str, expected: Expected, sent: int
    ) -> tuple[Verdict, str | None]:
        """After a lost answer: what the stored object, or the versions read since ``sent``, prove about
        our write (see ``lineage``)."""
        try:
            version, metadata = await self._head(name)
        except Exception as exc:
            if self._outcome(exc) is not Outcome.NOT_FOUND:
                raise
            # Nothing stored: an insert or a blind write did not land; a compare-and-swap
            # either did not, or landed and was deleted since (nothing tells which).
            if isinstance(expected, str):
                raise EvidenceGone("the object is gone: deleted since") from exc
            return Verdict.NOT_YET, None
        self._lineages.learn(name, version.etag, metadata)
        replaced = expected if isinstance(expected, str) else None
        verdict = self._lineages.verdict(write_id, replaced, version.etag, metadata, insert=expected is ABSENT,
                                         seen_since=(name, sent))
        if verdict[0] is Verdict.UNKNOWN:
            raise self._lineages.gone(replaced, version.etag, metadata)
        return verdict

    def remove(self, path: str, expected: Expected = ANY) -> None:
        if expected is ABSENT or expected == "":
            raise PreconditionFailed(path)
        name = self._name(path)
        conflict: PreconditionFailed | None = None
        for _ in self.retry.rounds(DELETE_ATTEMPTS - 1 if expected is ANY else 0):
            try:
                self._run(
                    lambda: self._delete_object(name, expected),
                    f"delete {path}",
                    conditional=True,  # S3 pins even an unconditional delete to the version it saw
                    reconcile=lambda: self._confirm_delete(name, expected),
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

    async def _confirm_delete(self, name: str, expected: Expected) -> tuple[Verdict, None]:
        """After a lost answer: what the stored object proves about our delete.

        Gone counts as done: a deleted object leaves no metadata, so whether
        our delete or another one just like it removed it cannot be told.
        """
        try:
            version, metadata = await self._head(name)
        except Exception as exc:
            if self._outcome(exc) is Outcome.NOT_FOUND:
                return Verdict.APPLIED, None
            raise
        if not isinstance(expected, str):
            return Verdict.NOT_YET, None  # deleting whatever is there: it is still there
        verdict = self._lineages.verdict(None, expected, version.etag, metadata)[0]  # replaced, or still there?
        if verdict is Verdict.UNKNOWN:
            raise self._lineages.gone(expected, version.etag, metadata)
        return verdict, None

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

    def missing_root(self, exc: BaseException) -> str | None:
        """``"bucket 'b'"`` if ``exc`` (an error of ``_run``, chained from the SDK's) says the bucket is missing."""
        cause = exc.__cause__
        if isinstance(exc, OSError) and cause is not None and self._outcome(cause) is Outcome.BUCKET_MISSING:
            return f"{self.root_kind} {self.bucket!r}"
        return None

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


def _refusal(outcome: Outcome, what: str) -> Exception:
    """A 404 or 412 that no lost answer can explain: the object is missing, or the precondition failed."""
    if outcome is Outcome.NOT_FOUND:
        return FileNotFoundError(errno.ENOENT, "No such object", what)
    return PreconditionFailed(what)


def _failure(what: str, outcome: Outcome, exc: Exception) -> OSError:
    """The error of a request given up after ``outcome``, chained from the last attempt's ``exc``."""
    failure = OSError(errno.EIO, f"{what}: {outcome.value}: {type(exc).__name__}: {exc}")
    failure.__cause__ = exc
    return failure


def _pause(policy: RetryConfig, attempt: int, until: float) -> None:
    """Sleep before attempt ``attempt + 1`` as ``policy`` says, never past ``until``."""
    time.sleep(min(policy.backoff(attempt), max(0.0, until - time.monotonic())))


def _may_send_again(outcome: Outcome, failed: int, lost_budget: int) -> bool:
    """Whether sending a request again is safe and worth it, after ``failed`` attempts ended in ``outcome``
    (``lost_budget``: the sends a request whose answers are lost gets).

    Every request is either idempotent (reads, listings) or reconciled
    (every change), so a lost answer may always be followed by a resend.
    Each outcome has its own budget: a few unreachable attempts among lost
    answers do not end a request that is getting through.
    """
    if outcome is Outcome.REFUSED:
        return True  # until the deadline: the service asked us to slow down
    if outcome is Outcome.UNREACHABLE:
        return failed < min(UNREACHABLE_ATTEMPTS, lost_budget)
    if outcome is Outcome.LOST:
        return failed < lost_budget
    return False


async def within(request: Callable[[], Awaitable[T]], seconds: float) -> T:
    """``request()``, cancelled after ``seconds`` (``asyncio.TimeoutError``)."""
    return await asyncio.wait_for(request(), seconds)
