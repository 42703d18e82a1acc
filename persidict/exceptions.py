"""The exceptions persidict raises beyond the built-in ones.

Each one also derives from the built-in that code written for plain dicts
would already catch::

    TypeError
    └── MutationPolicyError      a mutation the store's policy forbids
    RuntimeError
    ├── ConcurrencyConflictError a conditional retry loop ran out of attempts
    └── BackendError             the storage itself failed (chained ``from`` the cause)

A missing key is always ``KeyError`` (chained from the backend's not-found
error); bad keys and values are ``TypeError``/``ValueError``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BackendError", "ConcurrencyConflictError", "MutationPolicyError"]


class MutationPolicyError(TypeError):
    """A write, delete or overwrite refused by policy ("append-only", "write-once")."""

    def __init__(self, policy: str) -> None:
        super().__init__(policy)
        self.policy = policy

    def __str__(self) -> str:
        return self.policy


class ConcurrencyConflictError(RuntimeError):
    """Other writers kept changing a key until the retry budget was spent."""

    def __init__(self, key: Any, attempts: int) -> None:
        super().__init__(f"operation failed after {attempts} attempt(s) for key {key!r}")
        self.key = key
        self.attempts = attempts


class BackendError(RuntimeError):
    """The storage backend failed for a reason other than a missing key."""

    def __init__(self, message: str, *, backend: str, operation: str, key: Any = None) -> None:
        super().__init__(message)
        self.backend = backend
        self.operation = operation
        self.key = key
