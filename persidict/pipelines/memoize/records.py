"""What memoize stores under a key: a ``Lease`` while the body runs, then a ``Result``.

Both pickle under the package's public path (``persidict.pipelines.memoize``),
so moving code between the package's modules never orphans a stored record.
Fields added since the first release have defaults: records written by it
still load (a missing field reads as its default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Lease", "Result"]

PUBLIC_MODULE = "persidict.pipelines.memoize"


@dataclass(frozen=True)
class Lease:
    """A claim on a key: ``owner`` is running the body and renews this until ``expires_at`` (wall clock).

    ``host``, ``pid`` and ``started`` name the claiming process (its host's
    identity, its pid and its start time), so that a caller on the same host
    can tell that the claimer died and take over at once; empty when unknown.
    ``token`` is the lease's fencing token (``persidict.coordination``).
    """

    owner: str
    expires_at: float
    host: str = ""
    pid: int = 0
    started: str = ""
    token: int = 0


@dataclass(frozen=True)
class Result:
    """The body's return value, with when it was computed (wall clock), how long it took and the call.

    ``arguments`` is a short text of the call's arguments, for people reading
    ``cached_calls()``; it is never parsed.
    """

    value: Any
    computed_at: float | None = None
    seconds: float | None = None
    arguments: str = ""


for _record in (Lease, Result):
    _record.__module__ = PUBLIC_MODULE
