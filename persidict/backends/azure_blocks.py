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
written straight into one buffer.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError

from ..protocol.versions import ABSENT, Expected
from .object_store import Commit
from .s3_parts import ViewFile

if TYPE_CHECKING:
    from .azure import AzureBackend

__all__ = ["BlocksDiscarded", "BufferWriter", "block_ids", "conditions", "ranged_client", "staged_blocks"]

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


def block_ids(count: int) -> list[str]:
    """``count`` block ids of one write: a random prefix and the index, all of one length (the SDK base64s them)."""
    prefix = secrets.token_hex(8)
    return [f"{prefix}-{index:06d}" for index in range(count)]


@contextlib.contextmanager
def staged_blocks(backend: AzureBackend, path: str, data: bytes, metadata: dict[str, str]) -> Iterator[Commit]:
    """Stage ``data`` in blocks, ``parts_in_flight`` at a time; yield the commit (Put Block List).

    A block that fails for good stops the write; the blocks already staged
    stay uncommitted and expire (see the module's docstring).
    """
    view = memoryview(data).cast("B")
    step = max(backend.transfers.part_size, -(-len(view) // MAX_BLOCKS))  # blocks grow to fit Azure's limit
    starts = range(0, len(view), step)
    ids = block_ids(len(starts))
    name = backend._name(path)

    def stage(index: int) -> None:
        body = view[starts[index] : starts[index] + step]
        backend._run(functools.partial(_stage, backend, name, ids[index], body), f"stage block {index + 1} of {path}")

    with ThreadPoolExecutor(backend.transfers.parts_in_flight) as pool:
        futures = [pool.submit(stage, index) for index in range(len(ids))]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()  # stop staging: the write has failed
            raise
    yield functools.partial(_commit, backend, name, ids, metadata)


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


def ranged_client(backend: AzureBackend, name: str) -> Any:
    """A client of blob ``name`` whose downloads get ``part_threshold`` bytes first, then ``part_size`` ranges.

    The SDK reads these sizes from the client's configuration, shared by
    every client of the service: this one gets its own copy.
    """
    blob = backend._blob(name)
    config = copy.copy(blob._config)
    config.max_single_get_size = backend.transfers.part_threshold
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
