"""The module paths of persidict 0.309.0 (and of our own earlier releases), kept importable.

Code written for persidict 0.x imports them (``from persidict.file_dir_dict
import FileDirDict``), and pickles and JSON written by it record them as the
home of a class.  Each old path is an alias of the module that holds the names
today: ``persidict.safe_str_tuple`` *is* ``persidict.keys.tuples``.

The classes that end up inside stored values (keys, flags, results,
exceptions) also keep the 0.x path as their ``__module__``, so what we pickle
loads in persidict 0.x and the reverse.

The 0.x paths are registered when ``persidict`` is imported (their modules are
loaded anyway); the paths of our own earlier releases load on first use, through
``_AliasFinder``, so ``import persidict`` stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

__all__ = ["LEGACY_MODULES", "MOVED_MODULES", "register_legacy_modules"]

_PACKAGE = "persidict"

LEGACY_MODULES: dict[str, str] = {
    "safe_chars": "keys.chars",
    "safe_str_tuple": "keys.tuples",
    "safe_str_tuple_signing": "keys.digests",
    "jokers_and_status_flags": "protocol.flags",
    "exceptions": "protocol.exceptions",
    "persi_dict": "core.front",
    "file_dir_dict": "presets.local",
    "local_dict": "presets.local",
    "basic_s3_dict": "presets.s3",
    "s3_dict_file_dir_cached": "presets.s3",
    "empty_dict": "presets.empty",
    "write_once_dict": "presets.write_once",
    "overlapping_multi_dict": "presets.overlapping",
    "cached_appendonly_dict": "presets.cached",
    "cached_mutable_dict": "presets.cached",
}
"""0.309.0's module name (below ``persidict``) -> the module that serves it now."""

MOVED_MODULES: dict[str, str] = {
    "memoizing": "pipelines.memoize",
}
"""Paths of our earlier releases that stored data names (memoize's pickled records)."""


class _AliasLoader(importlib.abc.Loader):
    """Loads an old path by handing out the module that lives at the new one."""

    def __init__(self, target: str) -> None:
        self._target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # a placeholder module; exec_module replaces it

    def exec_module(self, module: ModuleType) -> None:
        # The import system returns whatever sys.modules holds under the name
        # once this returns, so the alias is the target module itself.
        sys.modules[module.__name__] = importlib.import_module(self._target)


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds the moved module paths of ``MOVED_MODULES`` (imported only when asked for)."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != _PACKAGE or name not in MOVED_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(f"{_PACKAGE}.{MOVED_MODULES[name]}"))


def register_legacy_modules() -> None:
    """Make every old path importable: 0.309.0's at once, our earlier releases' on first use."""
    package = sys.modules[_PACKAGE]
    for old, current in LEGACY_MODULES.items():
        module = importlib.import_module(f"{_PACKAGE}.{current}")
        sys.modules.setdefault(f"{_PACKAGE}.{old}", module)
        setattr(package, old, module)
    if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
        sys.meta_path.append(_AliasFinder())
