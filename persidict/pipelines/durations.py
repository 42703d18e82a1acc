"""Durations as people write them: ``90s``, ``15m``, ``12h``, ``7d``, ``2w``, or a number of seconds.

Used by ``memoize(expire_after=...)`` and ``persidict rm --older-than``.
"""

from __future__ import annotations

import datetime
import math
import re

__all__ = ["parse_duration", "seconds_of"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhdw]?)\s*")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number with an optional unit (s, m, h, d, w); ``ValueError`` otherwise."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"expected a duration such as 90s, 15m, 12h, 7d or 2w, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def seconds_of(duration: datetime.timedelta | float | str, what: str) -> float:
    """A positive, finite number of seconds from a timedelta, a number or a duration text."""
    if isinstance(duration, datetime.timedelta):
        seconds = duration.total_seconds()
    elif isinstance(duration, str):
        seconds = parse_duration(duration)
    elif isinstance(duration, (int, float)) and not isinstance(duration, bool):
        seconds = float(duration)
    else:
        raise TypeError(f"{what} must be a timedelta, a number of seconds or a text such as '7d', got {duration!r}")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{what} must be a positive duration, got {duration!r}")
    return seconds
