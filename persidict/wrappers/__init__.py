"""Stores composed from other stores: write-once, read-through caches, format families.

``PassThroughDict`` is the shared base (reads go to an inner dict);
``WriteOnceDict`` ignores repeated writes; ``AppendOnlyDictCached`` and
``MutableDictCached`` put local caches in front of a (remote) main dict;
``OverlappingMultiDict`` opens one dict per serialization format on one
storage location.
"""

from __future__ import annotations

from .cached import AppendOnlyDictCached, MutableDictCached
from .overlapping import OverlappingMultiDict
from .pass_through import PassThroughDict
from .write_once import WriteOnceDict

__all__ = [
    "AppendOnlyDictCached",
    "MutableDictCached",
    "OverlappingMultiDict",
    "PassThroughDict",
    "WriteOnceDict",
]
