"""How codecs name types: in their errors (``int``, ``numpy.ndarray``, ``mymodule.Point``) and in ``holds``."""

from __future__ import annotations

__all__ = ["ANY_VALUE", "type_name"]

ANY_VALUE = "any value"
"""What ``Codec.holds`` says of a format that holds every value it can serialize."""


def type_name(kind: type) -> str:
    """A builtin by its name, anything else by its module and qualified name."""
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
