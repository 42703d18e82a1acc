"""List the public names each persidict 0.309.0 module defines itself.

Argument: a JSON spec ``{"modules": ["persidict.safe_str_tuple", ...]}``.
Prints ``{module: [name, ...]}``: the names without a leading underscore whose
class or function (or, for a constant, whose value's class) was defined in
that very module, so re-exports and imported helpers are left out.
"""

from __future__ import annotations

import importlib
import json
import types
from typing import Any

from _reference_side import spec_from_argv


def defining_module(value: Any) -> str | None:
    if isinstance(value, type) or callable(value):
        return getattr(value, "__module__", None)
    return type(value).__module__


def names_defined_in(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    return sorted(name for name, value in vars(module).items()
                  if not name.startswith("_") and not isinstance(value, types.ModuleType)
                  and defining_module(value) == module_name)


if __name__ == "__main__":
    spec = spec_from_argv()
    print(json.dumps({name: names_defined_in(name) for name in spec["modules"]}))
