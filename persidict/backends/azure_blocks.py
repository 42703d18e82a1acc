"""Big values on Azure: staged blocks with the guarantees of one Put Blob, and concurrent ranged reads.

A value over ``part_threshold`` bytes goes up as blocks we stage ourselves
(Put Block), ``parts_in_flight`` at a time, and keeps everything a single
conditional Put Blob promises:

- each block is staged with its own retries and deadline (the store's
  ``RetryConfig``): a block sent again replaces itself, so a block whose
  answer was lost or refused is sent again alone, never the whole value;
- block ids are random per write (all of one length, as the service
  requires), so two writers staging blocks of the same blob never mix;
- the commit (Put Block List) carries the write id and lineage metadata and
  the precondition (``If-None-Match: *`` or ``If-Match``), which the service
  checks atomically: until then nothing is visible, and a refused commit
  replaces nothing;
- blocks of a write that never commits stay uncommitted: they are invisible,
  and the service discards them when the blob is next committed, or after
  seven days (there is no call that deletes them, so there is nothing to
  abort and nothing for ``persidict gc`` to do).

Reads of a blob over ``part_threshold`` bytes take the first ``part_threshold``
bytes in the first GET and the rest in ``part_size`` ranges, ``parts_in_flight``
at once, each pinned to the first answer's ETag (``If-Match``) by the SDK,
written straight into one buffer.  Values decoded from a file (``d[k]``) read
the same ranges through ``AzureRanges``, into the decoder's own buffers; the
blocks of any write are cut by ``part_uploads.PartSink`` (``StagedBlocks``).
"""

from __future__ import annotations

import copy
import functools
import io
import secrets
from typing import TYPE_CHECKING, Any, cast

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError

from ..protocol.versions import ABSENT, Expected
from .base import ReplacedMidRead
from .object_store import Commit, Outcome
from .part_reads import VersionRanges
from .s3_parts import ViewFile

if TYPE_CHECKING:
    from .azure import AzureBackend

__all__ = ["AzureRanges", "BlocksDiscarded", "BufferWriter", "StagedBlocks", "ViewsWriter", "block_id_of",
           "conditions", "ranged_client"]

MAX_BLOCKS = 50_000
"""The most blocks one blob may have."""


class BlocksDiscarded(Exception):
    """The commit named blocks the service no longer has: another writer committed (or deleted) the blob
    after they were staged.  A failure of this attempt (nothing was written); the caller may stage again."""


def conditions(expected: Expected) -> dict[str, Any]:
    """The SDK's keywords for a write's precondition: ``If-None-Match: *``, ``If-Match``, or none."""
    if expected is ABSENT:
        return {"match_condition": MatchConditions.IfMissing}  # no etag: the SDK would pass it on to aiohttp
    if isinstance(expected, str):
        return {"etag": expected, "match_condition": MatchConditions.IfNotModified}
    return {}


def block_id_of(prefix: str, number: int) -> str:
    """The id of block ``number`` of the write whose random prefix is ``prefix``: all of one length (the
    service requires it; the SDK base64s them)."""
    return f"{prefix}-{number:06d}"


class StagedBlocks:
    """Blocks staged under random ids, then one commit, as a ``part_uploads.Upload``: ``parts_in_flight``
    blocks at a time.  Nothing to start (a block needs no upload id) and nothing to abort (see the module)."""

    max_parts = MAX_BLOCKS
    tail_in_commit = False

    def __init__(self, backend: AzureBackend, path: str, metadata: dict[str, str]) -> None:
        self._backend, self._path, self._metadata = backend, path, metadata
        self._name = backend._name(path)
        self._prefix = secrets.token_hex(8)  # random per write: two writers' blocks never mix
        self.in_flight = backend.transfers.parts_in_flight

    def step_for(self, size: int | None) -> int:
        """``part_size``, or larger blocks for ``size`` to fit Azure's 50,000."""
        part_size = self._backend.transfers.part_size
        return part_size if size is None else max(part_size, -(-size // MAX_BLOCKS))

    def start(self) -> None:
        pass

    def send(self, number: int, offset: int, body: memoryview) -> str:
        block_id = block_id_of(self._prefix, number)
        self._backend._run(functools.partial(_stage, self._backend, self._name, block_id, body),
                           f"stage block {number} of {self._path}")
        return block_id

    def commit(self, receipts: list[Any], tail: memoryview, size: int) -> Commit:
        return functools.partial(_commit, self._backend, self._name, receipts, self._metadata)

    def abort(self) -> None:
        pass  # staged blocks cannot be deleted: they stay uncommitted and expire


async def _stage(backend: AzureBackend, name: str, block_id: str, body: memoryview) -> None:
    """Put Block, read from the value's buffer as a file (no copy); idempotent (a block sent again replaces itself)."""
    await backend._blob(name).stage_block(block_id, ViewFile(body), length=len(body), **backend.request_options)


async def _commit(backend: AzureBackend, name: str, ids: list[str], metadata: dict[str, str],
                  expected: Expected) -> str:
    """Put Block List under ``expected``: the one request that makes the value visible; the new ETag."""
    from azure.storage.blob import BlobBlock

    try:
        response = await backend._blob(name).commit_block_list(
            [BlobBlock(block_id) for block_id in ids], metadata=metadata, **conditions(expected),
            **backend.request_options)
    except HttpResponseError as exc:
        if getattr(exc, "error_code", None) == "InvalidBlockList":  # a str enum of the SDK, or a str
            raise BlocksDiscarded(f"{name}: another writer's commit discarded the staged blocks") from exc
        raise
    return str(response["etag"])


def ranged_client(backend: AzureBackend, name: str, first: int | None = None) -> Any:
    """A client of blob ``name`` whose downloads get ``first`` bytes first (default ``part_threshold``), then
    ``part_size`` ranges.

    The SDK reads these sizes from the client's configuration, shared by
    every client of the service: this one gets its own copy.
    """
    blob = backend._blob(name)
    config = copy.copy(blob._config)
    config.max_single_get_size = backend.transfers.part_threshold if first is None else first
    config.max_chunk_get_size = backend.transfers.part_size
    blob._config = config
    return blob


class BufferWriter(io.RawIOBase):
    """A seekable, write-only file over one preallocated buffer: the SDK's concurrent ranges land in place."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.buffer = bytearray(size)
        self._view = memoryview(self.buffer)
        self._position = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = memoryview(data).cast("B")
        self._view[self._position : self._position + len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._position = offset if whence == io.SEEK_SET else self._position + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def value(self) -> bytes:
        """The bytes read, in the buffer they were read into (no copy: every reader of values takes any buffer)."""
        return cast(bytes, self.buffer)


class ViewsWriter(io.RawIOBase):
    """A write-only file over buffers filled one after the other: the SDK's ranges land in place."""

    def __init__(self, views: list[memoryview]) -> None:
        super().__init__()
        self._views = [view for view in views if len(view)]
        self._filled = 0  # of the first view

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = memoryview(data).cast("B")
        written = 0
        while written < len(chunk):
            view = self._views[0]  # more bytes than asked for: an IndexError, never a silent overflow
            take = min(len(view) - self._filled, len(chunk) - written)
            view[self._filled : self._filled + take] = chunk[written : written + take]
            written += take
            self._filled += take
            if self._filled == len(view):
                self._views.pop(0)
                self._filled = 0
        return written


class AzureRanges(VersionRanges["AzureBackend"]):
    """Ranged GETs of one version of a blob (``part_reads.Ranges``), pinned by ``If-Match``, each with its
    own retries; the SDK takes each range ``part_size`` bytes per request, so a range holds one part at most."""

    def fetch(self, views: list[memoryview], offset: int) -> None:
        self.backend._run(functools.partial(_fetch_range, self.backend, self.path, self.etag, views, offset),
                          f"read {self.path}")

    def read_open(self, body: Any, into: memoryview, offset: int, *, close: bool) -> bool:
        """Azure's first answer comes read whole (the SDK reads it): no body is ever open."""
        self.fetch([into], offset)
        return False


async def _fetch_range(backend: AzureBackend, path: str, etag: str, views: list[memoryview], offset: int) -> None:
    """The bytes of version ``etag`` from ``offset`` on, into ``views``; ``ReplacedMidRead`` if it was replaced."""
    blob = ranged_client(backend, backend._name(path), first=backend.transfers.part_size)
    try:
        downloader = await blob.download_blob(
            offset=offset, length=sum(len(view) for view in views), etag=etag,
            match_condition=MatchConditions.IfNotModified, max_concurrency=1, **backend.request_options)
        await downloader.readinto(ViewsWriter(views))
    except Exception as exc:
        if backend._outcome(exc) in (Outcome.CONFLICT, Outcome.NOT_FOUND):  # not chained: a lost answer
            raise ReplacedMidRead(f"{path} was replaced while it was read") from None
        raise
