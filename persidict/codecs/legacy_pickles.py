"""Reading the pkl files of persidict 0.x: joblib pickles, compressed with lz4.

persidict 0.x wrote ``pkl`` values with ``joblib.dump`` (lz4 frames, starting
with the bytes ``04 22 4D 18``; numpy arrays inside as joblib's own records).
This package writes plain pickles, and reads the old files transparently:
they are told apart by their first bytes, and joblib (with lz4) is imported
only when such a file is met.  Both ship in the ``legacy`` extra.
"""

from __future__ import annotations

import io
import pickle

__all__ = ["INSTALL_HINT", "is_legacy_pickle", "load_legacy_pickle"]

INSTALL_HINT = "pip install 'persidict[legacy]'"

_PICKLE_START = b"\x80"  # the PROTO opcode that starts every pickle of protocol 2 or later
_JOBLIB_ARRAYS = b"joblib.numpy_pickle"  # the home of joblib's array records, named in its pickles
_LZ4_FRAME = b"\x04\x22\x4d\x18"
_COMPRESSED_STARTS = (  # what joblib's compressors write first; no pickle starts with any of them
    _LZ4_FRAME,
    b"\x78",  # zlib
    b"\x1f\x8b",  # gzip
    b"BZh",  # bz2
    b"\xfd7zXZ",  # xz
    b"]\x00\x00",  # lzma
    b"ZF",  # joblib's own zlib framing of old
)


def is_legacy_pickle(data: bytes) -> bool:
    """Whether ``data`` is a joblib pickle (compressed, or holding joblib's array records)."""
    if data.startswith(_PICKLE_START):
        return _JOBLIB_ARRAYS in data
    return data.startswith(_COMPRESSED_STARTS)


def load_legacy_pickle(data: bytes) -> object:
    """Load a joblib pickle; a missing joblib or lz4 raises ``ModuleNotFoundError`` naming the extra."""
    try:
        import joblib

        if data.startswith(_LZ4_FRAME):
            import lz4.frame  # noqa: F401  # joblib needs it and only says so vaguely
    except ModuleNotFoundError as exc:
        if data.startswith(_PICKLE_START):
            # Uncompressed: without joblib it may still be a plain pickle that merely
            # mentions joblib's module name in a string.
            try:
                return pickle.loads(data)
            except Exception:
                pass
        raise ModuleNotFoundError(
            f"this pkl value was written by persidict 0.x as a joblib pickle; reading it needs "
            f"{exc.name}: {INSTALL_HINT}",
            name=exc.name,
        ) from exc
    return joblib.load(io.BytesIO(data))
