"""Values on their way to and from a backend: as bytes, or streamed through an open file.

``ValuePayload`` is what ``FsspecStore.write`` hands to ``backend.put_stream``: a backend
that keeps bytes asks for ``to_bytes()`` (the codec's ``dumps``), a local folder has the
codec ``dump`` the value straight into its temporary file.  ``FilePayload`` is the same for
a file stored as it is (``put_file``).  ``CodecDecoder`` is the reverse, for
``backend.read_decoded``: it turns a failure to decode into ``Undecodable``, which the store
reports with the key (a file's own ``OSError`` is a storage failure, not a bad value).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import IO, Any

from ..codecs.registry import Codec
from ..codecs.streams import dump_into, load_from

__all__ = ["CodecDecoder", "FilePayload", "Undecodable", "ValuePayload", "copy_file", "copy_to_path"]

_COPY_CHUNK = 1 << 20


class Undecodable(Exception):
    """The stored bytes are no valid value of the format (the cause says why)."""


class ValuePayload:
    """A value and its codec; ``encoded`` runs once the value is serialized, before it is in place, and
    ``starting`` before a backend sends the first part of it (see ``Payload``)."""

    __slots__ = ("_codec", "_encoded", "_value", "starting")

    def __init__(self, codec: Codec, value: Any, encoded: Callable[[], None], starting: Callable[[], None]) -> None:
        self._codec = codec
        self._value = value
        self._encoded = encoded
        self.starting = starting

    def to_bytes(self) -> bytes:
        data = self._codec.dumps(self._value)
        self._encoded()
        return data

    def write_to(self, file: IO[bytes]) -> None:
        dump_into(self._codec, self._value, file)
        self._encoded()


class FilePayload:
    """The bytes of an open local file, as they are (``put_file``); each pass reads it from its start."""

    __slots__ = ("_encoded", "_file", "starting")

    def __init__(self, file: IO[bytes], encoded: Callable[[], None], starting: Callable[[], None]) -> None:
        self._file = file
        self._encoded = encoded
        self.starting = starting

    def to_bytes(self) -> bytes:
        self._file.seek(0)
        data = self._file.read()
        self._encoded()
        return data

    def write_to(self, file: IO[bytes]) -> None:
        self._file.seek(0)
        copy_file(self._file, file)
        self._encoded()


def copy_file(source: IO[bytes], target: IO[bytes]) -> None:
    """Copy the rest of ``source`` into ``target``: in the kernel (``sendfile``) between two real
    files, else through one reused buffer of 1 MiB."""
    try:
        source_fd, target_fd = source.fileno(), target.fileno()
    except (AttributeError, OSError):  # io.UnsupportedOperation is an OSError
        shutil.copyfileobj(source, target, _COPY_CHUNK)
        return
    target.flush()
    start = offset = source.tell()
    try:
        while sent := os.sendfile(target_fd, source_fd, offset, _COPY_CHUNK << 4):
            offset += sent
    except OSError:
        if offset != start:
            raise  # a real failure half way (a full disk)
        shutil.copyfileobj(source, target, _COPY_CHUNK)  # no sendfile between files here (macOS)
        return
    target.seek(0, os.SEEK_END)


class CodecDecoder:
    """Values from stored bytes or an open file, with one store's codec."""

    __slots__ = ("_codec",)

    def __init__(self, codec: Codec) -> None:
        self._codec = codec

    def from_bytes(self, data: bytes) -> Any:
        try:
            return self._codec.loads(data)
        except ModuleNotFoundError:
            raise  # an old format whose reader is not installed: the error names the extra
        except Exception as exc:
            raise Undecodable(str(exc)) from exc

    def from_file(self, file: IO[bytes]) -> Any:
        try:
            return load_from(self._codec, file)
        except (ModuleNotFoundError, OSError):
            raise  # a missing extra, or the file itself failing: not a bad value
        except Exception as exc:
            raise Undecodable(str(exc)) from exc


def copy_to_path(source: IO[bytes], path: str | os.PathLike[str]) -> None:
    """Write the rest of ``source`` to the local file ``path`` atomically: into a hidden temporary
    file in its folder, then renamed over it (a reader of ``path`` never sees a partial file)."""
    target = os.path.abspath(path)
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".persidict-get-")
    try:
        with open(fd, "wb") as out:
            copy_file(source, out)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
