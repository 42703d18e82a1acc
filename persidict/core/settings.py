"""A store's settings: the one record its parameters, pickles, children and ``repr`` derive from.

Every store class records the parameters of its constructor once, normalized
(an absolute folder, a resolved layout), in a frozen ``Settings``:

- ``get_params()`` returns them, so ``type(d)(**d.get_params())`` reopens ``d``;
- pickling a store pickles them (``reopen``), never live clients or content;
- ``get_subdict(prefix)`` derives the child's settings: the parameter that names
  the location grows by the prefix, and a parameter that is itself a store
  becomes that store's subdict;
- ``repr()`` shows them with every secret masked as ``'***'``.

(fsspec records every filesystem's arguments the same way, and derives
pickling and equality from that record.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MASK", "Location", "Settings", "mask_secrets"]

_SECRET_NAME = re.compile(r"key|secret|token|passw|credential|signature|sig$|sas|auth|connection_string", re.I)
"""Option names whose values are masked wherever a store shows its settings (``key``, ``secret``,
``token``, ``password``, ``account_key``, ``connection_string``, ``credential``, ``sas_token``, ...)."""
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^/:@\s]*:)[^/@\s]*(?=@)", re.I)
_URL_SECRET_QUERY = re.compile(r"(?P<head>[?&](?:[^=&#]*(?:key|secret|token|sig|credential))[^=&#]*=)[^&#]*", re.I)
_CONNECTION_SECRET = re.compile(r"(?P<head>(?:AccountKey|SharedAccessSignature|sig)=)[^;&\s]+", re.I)
MASK = "***"


def _mask_text(text: str) -> str:
    """A password in a URL (``https://user:pw@host``), a signature in its query, a key in a connection string."""
    for pattern in (_URL_PASSWORD, _URL_SECRET_QUERY, _CONNECTION_SECRET):
        text = pattern.sub(rf"\g<head>{MASK}", text)
    return text


def mask_secrets(value: Any) -> Any:
    """``value`` with every secret replaced by ``'***'``: option values under secret names, at any depth,
    and passwords and signatures inside URLs and connection strings.  Every ``repr``, HTML view and
    message that shows settings goes through it."""
    if getattr(type(value), "_is_a_persidict", False):
        return value  # a store: its own repr masks its secrets
    if isinstance(value, Mapping):
        return {name: MASK if isinstance(name, str) and _SECRET_NAME.search(name) and item not in (None, "")
                else mask_secrets(item) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_secrets(item) for item in value)
    if isinstance(value, str):
        return _mask_text(value)
    options = getattr(value, "storage_options", None)
    if isinstance(options, Mapping) and hasattr(value, "path"):  # a UPath carries its own options
        return _MaskedRepr(f"{type(value).__name__}({_mask_text(str(value))!r}, "
                           f"storage_options={mask_secrets(dict(options))!r})")
    return value


class _MaskedRepr:
    """Shows a given text as its repr (a UPath whose options were masked)."""

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text


@dataclass(frozen=True)
class Location:
    """Which constructor parameter names where a store lives, and how it grows for a child.

    ``kind``: ``"path"`` (a local folder), ``"url"`` (a URL, path or UPath),
    ``"prefix"`` (a key prefix ending in ``/`` or empty) or ``"backend"`` (an
    object with ``child(relative)``).
    """

    parameter: str
    kind: str

    def below(self, value: Any, relative: str) -> Any:
        """The location ``relative`` (a ``/``-separated path) below ``value``."""
        if self.kind == "path":
            return os.path.join(value, *relative.split("/"))
        if self.kind == "prefix":
            return f"{value}{relative}/"
        if self.kind == "backend":
            return value.child(relative)
        if not isinstance(value, str):
            return value / relative  # a UPath
        # In a chained URL (zip://inner::file:///archive.zip) the first link is the path being opened.
        head, separator, rest = value.partition("::")
        return f"{head.rstrip('/')}/{relative}{separator}{rest}"


@dataclass(frozen=True)
class Settings:
    """The normalized constructor parameters of one store (see the module docstring)."""

    cls: type
    params: Mapping[str, Any]
    location: Location | None = None

    def get_params(self) -> dict[str, Any]:
        """The parameters, sorted by name: ``cls(**get_params())`` reopens the store."""
        return dict(sorted(self.params.items()))

    def __repr__(self) -> str:
        shown = mask_secrets(self.get_params())
        return f"{self.cls.__name__}({', '.join(f'{name}={value!r}' for name, value in shown.items())})"

    def below(self, prefix: Any, relative: str) -> Settings:
        """The settings of the subdict at ``prefix`` (``relative``: its path below this store's root)."""
        params = dict(self.params)
        for name, value in params.items():
            if getattr(type(value), "_is_a_persidict", False):
                params[name] = value.get_subdict(prefix)
        if self.location is not None and relative:
            params[self.location.parameter] = self.location.below(params[self.location.parameter], relative)
        return Settings(self.cls, params, self.location)
