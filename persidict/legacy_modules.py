"""The module names of persidict 0.x, kept importable.

Code written for persidict 0.x imports them (``from persidict.file_dir_dict
import FileDirDict``), and JSON written by parameter-based serializers records
them as the home of a class.  Each old name is an alias of the module that
holds the class today.  (Modules whose classes end up inside stored values,
``safe_str_tuple`` and ``jokers_and_status_flags``, keep the old names as
their real names, so pickles load both ways.)
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["LEGACY_MODULES", "register_legacy_modules"]

LEGACY_MODULES: dict[str, str] = {
    "basic_s3_dict": "s3_dicts",
    "s3_dict_file_dir_cached": "s3_dicts",
    "file_dir_dict": "stores",
    "local_dict": "stores",
    "write_once_dict": "wrappers.write_once",
    "overlapping_multi_dict": "wrappers.overlapping",
    "cached_appendonly_dict": "wrappers.cached",
    "cached_mutable_dict": "wrappers.cached",
}
"""Old module name (below ``persidict``) -> the module that serves it now."""


def register_legacy_modules() -> None:
    """Make every old name importable (its module is already imported by the package)."""
    package = sys.modules[__package__]
    for old, current in LEGACY_MODULES.items():
        module = importlib.import_module(f"{__package__}.{current}")
        sys.modules.setdefault(f"{__package__}.{old}", module)
        setattr(package, old, module)
