"""The ``npy`` format: one numpy array per file, in numpy's own ``.npy`` layout.

A store's files are then plain ``.npy`` files: ``np.load(d.key_to_path(k), mmap_mode="r")``
maps one without reading it. The format holds only what ``.npy`` holds without pickle:
arrays of any shape and of any dtype but ``object`` (a structured dtype too, if none of
its fields is an object), so loading never runs code (``allow_pickle=False`` both ways).
numpy comes from ``pip install "persidict[numpy]"`` and is imported when a store opens.
"""

from __future__ import annotations

import io
from typing import IO, Any

from .names import type_name
from .optional import require

__all__ = ["NpyCodec"]

_MAGIC = b"\x93NUMPY"


class NpyCodec:
    """numpy arrays as ``.npy`` bytes (``numpy.lib.format``), never pickled."""

    format_name = "npy"
    content_type = "application/octet-stream"
    holds = "numpy.ndarray"

    def __init__(self) -> None:
        self._np: Any = require("numpy", format_name="npy", extra="numpy")

    def dumps(self, value: object, /) -> bytes:
        """The ``.npy`` bytes of an array; ``TypeError`` for anything else, or an array of objects."""
        buffer = io.BytesIO()
        self.dump(value, buffer)
        return buffer.getvalue()

    def dump(self, value: object, file: IO[bytes], /) -> None:
        """Write an array as ``.npy`` into ``file`` (a real file: numpy writes the array's memory itself)."""
        np = self._np
        # A memmap is an ndarray backed by a file: its values are stored. Other subclasses
        # (masked arrays, matrices) would come back as plain arrays, without what they add.
        if type(value) not in (np.ndarray, np.memmap):
            raise TypeError(f"npy stores numpy arrays (numpy.ndarray), not {type_name(type(value))}")
        if value.dtype.hasobject:  # type: ignore[attr-defined]
            raise TypeError(f"npy stores no arrays of Python objects (dtype {value.dtype}): "  # type: ignore[attr-defined]
                            "the .npy file would hold a pickle; use pkl")
        np.lib.format.write_array(file, value, allow_pickle=False)

    def loads(self, data: bytes, /) -> Any:
        """The array of ``.npy`` bytes; ``ValueError`` for anything else (a pickle is never loaded)."""
        if not data.startswith(_MAGIC):
            raise ValueError("not a .npy file: it does not start with numpy's magic string")
        return self._np.load(io.BytesIO(data), allow_pickle=False)

    def load(self, file: IO[bytes], /) -> Any:
        """The array of an open ``.npy`` file, read into place (``ValueError`` for anything else)."""
        return self._np.lib.format.read_array(file, allow_pickle=False)
