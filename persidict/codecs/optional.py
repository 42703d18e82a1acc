"""Import a library that only some formats need, or say which extra installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, *, format_name: str, extra: str) -> ModuleType:
    """Import ``module`` for the ``format_name`` format; ``ImportError`` naming the extra if it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f'the "{format_name}" format needs {module.partition(".")[0]}: pip install "persidict[{extra}]"'
        ) from exc
