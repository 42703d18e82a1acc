"""The exceptions persidict raises beyond the built-in ones.

All share the root ``PersiDictError``, and each also derives from the built-in
that code written for plain dicts would already catch::

    PersiDictError
    ├── MutationPolicyError      (also a TypeError) a mutation the store's policy forbids
    ├── ConcurrencyConflictError (also a RuntimeError) a conditional retry loop ran out of attempts
    └── BackendError             (also a RuntimeError) the storage failed, chained ``from`` the cause
        └── BulkOperationError   some items of a bulk operation failed (``.failures``), the rest were done

A missing key is always ``KeyError`` (chained from the backend's not-found
error); bad keys and values are ``TypeError``/``ValueError``.  Every one of
them survives ``pickle`` with its attributes, so an error raised in a worker
process reaches the parent as itself (``multiprocessing`` and process pools
pickle exceptions).
"""

from __future__ import annotations

from typing import Any

__all__ = ["BackendError", "BulkOperationError", "ConcurrencyConflictError", "MutationPolicyError", "PersiDictError"]


def _restore(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    """Rebuild an exception from its ``args`` and attributes, without calling ``__init__``."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class PersiDictError(Exception):
    """The root of persidict's own exceptions."""

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException pickles as cls(*args), which fails for constructors whose
        # parameters differ from args (keyword-only ones, extra fields).
        return _restore, (type(self), self.args, self.__dict__)


class MutationPolicyError(PersiDictError, TypeError):
    """A write, delete or overwrite refused by policy ("append-only", "write-once")."""

    def __init__(self, policy: str) -> None:
        super().__init__(policy)
        self.policy = policy

    def __str__(self) -> str:
        return self.policy


class ConcurrencyConflictError(PersiDictError, RuntimeError):
    """Other writers kept changing a key until the retry budget was spent."""

    def __init__(self, key: Any, attempts: int) -> None:
        super().__init__(f"operation failed after {attempts} attempt(s) for key {key!r}")
        self.key = key
        self.attempts = attempts


class BackendError(PersiDictError, RuntimeError):
    """The storage backend failed for a reason other than a missing key."""

    def __init__(self, message: str, *, backend: str, operation: str, key: Any = None) -> None:
        super().__init__(message)
        self.backend = backend
        self.operation = operation
        self.key = key


class BulkOperationError(BackendError):
    """Some items of a bulk operation (``update``, ``clear``) failed; the others were done.

    ``failures`` maps each failed key to its exception; the message names them.
    """

    def __init__(self, failures: dict[Any, BaseException], *, backend: str, operation: str) -> None:
        shown = ", ".join(f"{key!r} ({type(error).__name__}: {error})" for key, error in list(failures.items())[:5])
        more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
        super().__init__(f"{operation} failed for {len(failures)} key(s): {shown}{more}",
                         backend=backend, operation=operation)
        self.failures = failures


# Raised in workers and stored in values: pickled under persidict 0.x's module path.
for _cls in (PersiDictError, MutationPolicyError, ConcurrencyConflictError, BackendError, BulkOperationError):
    _cls.__module__ = "persidict.exceptions"
