"""Jupyter's view of a memoized function: what it is, where its results live, and what caching saved."""

from __future__ import annotations

from typing import Any

from ...core.html import location_text, table_html

__all__ = ["location_text", "memoized_html"]


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value < 60 else f"{value / 60:.1f} min"


def memoized_html(function: Any) -> str:
    """The HTML summary of a ``MemoizedFunction``: name, code version, store, hits, misses, time saved."""
    stats = function.stats
    module, name = function._prefix[1:3]
    try:
        code_version = function.code_version
    except Exception as error:  # shown, not raised: a display hook must not fail
        code_version = f"unknown ({type(error).__name__}: {error})"
    rows = [
        ("function", f"{module}.{name}"),
        ("code", code_version),
        ("store", f"{type(function.store).__name__} at {location_text(function.store)}"),
        ("hits", f"{stats.hits:,} (read from the store)"),
        ("misses", f"{stats.misses:,} (computed, {_seconds(stats.seconds_computing)})"),
        ("time saved", _seconds(stats.seconds_saved)),
    ]
    if stats.seconds_waiting:
        rows.append(("waited for others", _seconds(stats.seconds_waiting)))
    if function.options.expire_after is not None:
        rows.append(("results expire after", _seconds(function.options.expire_after)))
    return table_html(f"memoized {name}", rows)
