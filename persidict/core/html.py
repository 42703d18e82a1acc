"""HTML summaries of stores for Jupyter (``PersiDict._repr_html_``), credentials masked.

A store shows its class, its location, its format and, when that is cheap,
how many keys it holds: counted exactly when the backend keeps a count (an
in-memory store) or the store is small (one listing page: at most
``COUNT_LIMIT`` keys), else "more than ...".  A few keys are shown too.
Nothing secret is shown: credentials are masked as every ``repr`` masks them
(``settings.mask_secrets``).  Rendering never raises: a store that cannot be
listed says so in the table.  Duck-typed (``url``, ``get_params``), so it
renders any PersiDict, a 0.x-style subclass included.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from .settings import mask_secrets

__all__ = ["location_text", "store_html", "table_html"]

COUNT_LIMIT = 1000
"""Keys listed at most to count a store (one page of an S3 listing)."""

SAMPLE_KEYS = 5
"""Keys shown in a store's summary."""

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
    counted = store._items.known_count()  # exact and cheap where the storage keeps a count (memory: O(1))
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
