"""Open a store from a JSON spec, write the corpus into it, and check what it holds.

Shared by the fixture generator, the scripts run under persidict 0.309.0 and
the compatibility tests, so both sides open, write and check stores the same
way. It calls whichever ``persidict`` the interpreter imports, through public
names that both packages have.

A spec is plain JSON: ``{"kind": "local" | "s3" | "s3_cached", "format": fmt,
"params": {...}}`` where ``params`` are the keyword arguments of ``FileDirDict``,
``BasicS3Dict`` or ``S3Dict`` respectively; ``base_class_for_values`` is given
by name (``"str"``) because a type is not JSON.
"""

from __future__ import annotations

import traceback
from typing import Any

from legacy_corpus import Key, corpus, corpus_to_write, ours_only, values_equal

import persidict

Spec = dict[str, Any]
Report = dict[str, Any]

_STORE_CLASSES = {"local": "FileDirDict", "s3": "BasicS3Dict", "s3_cached": "S3Dict"}
_BASE_CLASSES: dict[str | None, type | None] = {None: None, "str": str}


def base_class_name(cls: type | None) -> str | None:
    """How a spec names ``base_class_for_values``."""
    return None if cls is None else cls.__name__


def open_store(spec: Spec, **extra_params: Any) -> Any:
    """A store of this interpreter's persidict, built from ``spec`` (plus ``extra_params``)."""
    params = {**spec["params"], **extra_params}
    params["base_class_for_values"] = _BASE_CLASSES[params.get("base_class_for_values")]
    params.setdefault("serialization_format", spec["format"])
    store_class = getattr(persidict, _STORE_CLASSES[spec["kind"]])
    return store_class(**params)


def write_corpus(store: Any, fmt: str) -> list[Key]:
    """Store the whole corpus of ``fmt``; returns the keys written, sorted."""
    values = corpus_to_write(fmt)
    for key, value in values.items():
        store[key] = value
    return sorted(values)


def _check(key: Key, expected: Any, read: Any, via: str) -> dict[str, Any] | None:
    """A mismatch record for one value read through ``via``, or None if it matches."""
    try:
        actual = read()
    except Exception as exc:  # any failure to read is a finding, reported with its traceback
        return {"key": list(key), "via": via, "expected": repr(expected),
                "error": "".join(traceback.format_exception_only(exc)).strip(),
                "traceback": traceback.format_exc()}
    if values_equal(expected, actual):
        return None
    return {"key": list(key), "via": via, "expected": f"{type(expected).__name__}: {expected!r}",
            "actual": f"{type(actual).__name__}: {actual!r}"}


def _items_by_key(store: Any) -> tuple[dict[Key, Any], str | None]:
    """Every (key, value) that ``items()`` yields, or the error that stopped it."""
    try:
        return {tuple(k): v for k, v in store.items()}, None
    except Exception as exc:  # reported, so one bad value does not hide the rest of the report
        return {}, "".join(traceback.format_exception_only(exc)).strip()


def compare_with_corpus(store: Any, fmt: str, *, ours: bool) -> Report:
    """What ``store`` holds compared with ``corpus(fmt)``: a JSON-ready report.

    Values are read both with ``store[key]`` and through ``items()``. An empty
    ``mismatches``, ``missing`` and ``extra`` and ``len == expected_len`` mean
    the store holds exactly the corpus. ``ours`` says the reader is our persidict,
    which must also read ``ours_only(fmt)`` exactly; 0.309.0 must only list those keys.
    """
    stored = corpus_to_write(fmt)
    expected = {**corpus(fmt), **(ours_only(fmt) if ours else {})}
    seen = sorted(tuple(k) for k in store.keys())
    items, items_error = _items_by_key(store)
    mismatches = []
    for key in sorted(set(expected) & set(seen)):
        mismatches.append(_check(key, expected[key], lambda k=key: store[k], "getitem"))
        if items_error is None:
            mismatches.append(_check(key, expected[key], lambda k=key: items[k], "items"))
    return {
        "keys_seen": [list(k) for k in seen],
        "mismatches": [m for m in mismatches if m is not None],
        "missing": [list(k) for k in sorted(set(stored) - set(seen))],
        "extra": [list(k) for k in sorted(set(seen) - set(stored))],
        "len": len(store),
        "expected_len": len(stored),
        "items_error": items_error,
    }


def problems(report: Report) -> list[str]:
    """The findings of a ``compare_with_corpus`` report as lines of text; empty if the store is right."""
    lines = [f"mismatch {m['key']} via {m['via']}: expected {m['expected']}, got "
             f"{m.get('actual') or m.get('error')}" for m in report["mismatches"]]
    lines += [f"missing {k}" for k in report["missing"]]
    lines += [f"extra {k}" for k in report["extra"]]
    if report["len"] != report["expected_len"]:
        lines.append(f"len() is {report['len']}, expected {report['expected_len']}")
    if report["items_error"]:
        lines.append(f"items() failed: {report['items_error']}")
    return lines
