"""The building blocks of memoize's canonical encoding: self-delimiting frames and buffer digests.

An encoding is a concatenation of frames ``<tag><length>:<payload>``, so no
two different values can produce the same bytes.  Large buffers (array
data, column data) enter an encoding as the SHA-256 of their bytes, never
as a copy: the encoding of a 10^6-row DataFrame is a few hundred bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["Undigestible", "buffer_digest", "frame", "integer", "text"]


class Undigestible(Exception):
    """A value part that has no canonical encoding; ``path`` collects where it sits, innermost first."""

    def __init__(self, value: object, hint: str = "") -> None:
        super().__init__(value)
        self.value = value
        self.hint = hint
        self.path: list[str] = []


def frame(tag: bytes, payload: bytes) -> bytes:
    """A self-delimiting item: tag, payload length, ``:``, payload (so concatenations are unambiguous)."""
    return b"%s%d:%s" % (tag, len(payload), payload)


def text(value: str) -> bytes:
    """The encoding of a str (lone surrogates included)."""
    return frame(b"S", value.encode("utf-8", "surrogatepass"))


def integer(value: int) -> bytes:
    """Two's complement bytes: exact for any size (``str`` refuses ints over 4300 digits)."""
    return frame(b"I", value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def buffer_digest(data: Any) -> bytes:
    """A frame holding the SHA-256 of a buffer's bytes (anything with the buffer protocol, read in place)."""
    return frame(b"H", hashlib.sha256(data).digest())
