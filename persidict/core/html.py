"""HTML summaries of stores for Jupyter (``PersiDict._repr_html_``), credentials masked.

A store shows its class, its location, its format and, when that is cheap,
how many keys it holds: counted exactly when the backend keeps a count (an
in-memory store) or the store is small (one listing page: at most
``COUNT_LIMIT`` keys), else "more than ...".  A few keys are shown too.
Nothing secret is shown: storage options whose names suggest a credential
(``key``, ``secret``, ``token``, ``password``, ``connection_string``, ...)
and passwords or signatures in URLs are masked.  Rendering never raises:
a store that cannot be listed says so in the table.

Duck-typed on purpose (``url``, ``get_params``): this module imports nothing
of persidict, so every layer above may use it.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["location_text", "mask_secrets", "store_html", "table_html"]

COUNT_LIMIT = 1000
"""Keys listed at most to count a store (one page of an S3 listing)."""

SAMPLE_KEYS = 5
"""Keys shown in a store's summary."""

MASK = "***"


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """Secret option names, a URL's password, a URL's secret query values (compiled on first use)."""
    return (
        re.compile(r"key|secret|token|passw|credential|signature|sig$|sas|auth|connection_string", re.I),
        re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^/:@\s]*:)[^/@\s]*(?=@)", re.I),
        re.compile(r"(?P<head>[?&](?:[^=&#]*(?:key|secret|token|sig|credential))[^=&#]*=)[^&#]*", re.I),
    )


def mask_secrets(value: Any) -> Any:
    """``value`` with credentials masked: in dicts by their names (recursively), in URLs and texts."""
    secret_name, url_password, url_query = _patterns()
    if isinstance(value, dict):
        return {name: MASK if isinstance(name, str) and secret_name.search(name) and item not in (None, "")
                else mask_secrets(item) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_secrets(item) for item in value)
    if isinstance(value, str):
        return url_query.sub(rf"\g<head>{MASK}", url_password.sub(rf"\g<head>{MASK}", value))
    return value


def location_text(store: Any) -> str:
    """Where a store keeps its values, as one masked line: its URL, or the stores it wraps."""
    url = getattr(store, "url", None)
    if isinstance(url, str):
        return str(mask_secrets(url))
    try:
        params = store.get_params()
    except Exception:  # a display helper never fails: the location is then unknown
        return "?"
    inner = [f"{name}: {location_text(item)}" for name, item in params.items() if hasattr(item, "get_params")]
    return "; ".join(inner) or "?"


def table_html(title: str, rows: Iterable[tuple[str, str]]) -> str:
    """A two-column HTML table under a bold title; every cell is escaped."""
    import html  # here, not at the top: html.entities costs ``import persidict`` milliseconds

    left = "style='text-align:left'"
    cells = "".join(
        f"<tr><th {left}>{html.escape(name)}</th><td {left}>{html.escape(text)}</td></tr>" for name, text in rows
    )
    return f"<div><b>{html.escape(title)}</b><table>{cells}</table></div>"


def _count(store: Any) -> tuple[str, list[str]]:
    """The number of keys (exact when cheap) and a few of them, as texts."""
    counted = None
    backend = getattr(store, "_backend", None)  # an FsspecDict's backend may keep a count (memory: O(1))
    if backend is not None and hasattr(store, "serialization_format"):
        counted = backend.count("." + store.serialization_format)
    listed = sorted("/".join(key) for key in itertools.islice(store.keys(), COUNT_LIMIT + 1))
    if counted is None:
        counted = len(listed) if len(listed) <= COUNT_LIMIT else None
    text = f"{counted:,}" if counted is not None else f"more than {COUNT_LIMIT:,}"
    return text, listed[:SAMPLE_KEYS]


def _rows(store: Any) -> list[tuple[str, str]]:
    """Location, format, policy and (masked) storage options of a store."""
    rows = [("location", location_text(store)), ("format", str(getattr(store, "serialization_format", "?")))]
    if getattr(store, "append_only", False):
        rows.append(("append-only", "yes"))
    params = store.get_params() if hasattr(store, "get_params") else {}
    if params.get("storage_options"):
        rows.append(("storage options", repr(mask_secrets(params["storage_options"]))))
    return rows


def store_html(store: Any) -> str:
    """The HTML summary of a store: class, location, format, number of keys and a few keys."""
    try:
        rows = _rows(store)
        count, sample = _count(store)
    except Exception as error:  # shown, not raised: a display hook must not fail
        return table_html(type(store).__name__, [("error", f"{type(error).__name__}: {error}")])
    rows.append(("keys", count))
    rows.extend(("key" if index == 0 else "", key) for index, key in enumerate(sample))
    return table_html(type(store).__name__, rows)
