"""What a lease looks like in the store: one small JSON text per name.

A lease record is a ``str`` (compact JSON), so it fits a store of any
format that holds text (pickle, JSON, text) and reads plainly in
``persidict ls``.  It names its holder (``owner``, and the host, pid and
start time that let a process of the same host see that the holder died),
when it expires (wall clock), its fencing ``token``, and whether it was
released: a released lease stays as a tombstone that carries the last token
forward, so the next holder's token is still higher.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from .processes import holder_is_gone, host_identity, this_process_started

__all__ = ["LeaseRecord", "new_owner"]

_TAG = "persidict-lease"
"""The field that marks a JSON text as a lease record (its value: the record's version)."""


def new_owner() -> str:
    """A name for one acquisition: this host, this pid, and a random part (unique per lease taken)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class LeaseRecord:
    """One lease as stored: ``owner`` holds it until ``expires_at`` (wall clock) with fencing ``token``.

    ``host``, ``pid`` and ``started`` name the holding process (empty when
    unknown); ``released`` marks a tombstone left by a release.
    """

    owner: str
    expires_at: float
    token: int = 0
    host: str = ""
    pid: int = 0
    started: str = ""
    released: bool = False

    @classmethod
    def fresh(cls, ttl: float, token: int) -> LeaseRecord:
        """A lease for this process, valid ``ttl`` seconds from now, with ``token``."""
        pid = os.getpid()
        return cls(new_owner(), time.time() + ttl, token, host_identity(), pid, this_process_started(pid))

    def renewed(self, ttl: float) -> LeaseRecord:
        """This lease, valid ``ttl`` seconds from now (same owner, same token)."""
        return replace(self, expires_at=time.time() + ttl)

    def tombstone(self) -> LeaseRecord:
        """The record a release leaves: expired, released, the token kept for the next holder."""
        return replace(self, expires_at=0.0, released=True)

    def text(self) -> str:
        """The record as stored: compact JSON text."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}  # asdict() deep-copies: slow
        return json.dumps({_TAG: 1, **fields}, separators=(",", ":"), sort_keys=True)

    @classmethod
    def parse(cls, value: Any) -> LeaseRecord | None:
        """The lease ``value`` holds (our JSON text, or an object with a lease's fields), or None if it is none.

        Objects with the fields (``owner``, ``expires_at`` ...) are memoize's
        records of earlier releases, which hold no token.
        """
        if isinstance(value, str):
            try:
                fields = json.loads(value)
            except ValueError:
                return None
            if not isinstance(fields, dict) or _TAG not in fields:
                return None
            fields.pop(_TAG)
        elif hasattr(value, "owner") and hasattr(value, "expires_at"):
            fields = {name: getattr(value, name) for name in cls.__dataclass_fields__ if hasattr(value, name)}
        else:
            return None
        try:
            return cls(**fields)
        except TypeError:
            return None

    def why_over(self) -> str | None:
        """Why this lease may be taken ('released', 'expired', 'its holder died'), or None while it is live."""
        if self.released:
            return "released"
        if self.expires_at <= time.time():
            return "expired"
        if holder_is_gone(self.host, self.pid, self.started):
            return f"its holder (pid {self.pid} on this host) is dead"
        return None
