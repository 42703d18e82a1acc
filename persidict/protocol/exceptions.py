"""The exceptions persidict raises beyond the built-in ones.

All share the root ``PersiDictError``, and each also derives from the built-in
that code written for plain dicts would already catch::

    PersiDictError
    ├── MutationPolicyError      (also a TypeError) a mutation the store's policy forbids
    ├── ConcurrencyConflictError (also a RuntimeError) a conditional retry loop ran out of attempts
    ├── BackendError             (also a RuntimeError) the storage failed, chained ``from`` the cause
    │   ├── BulkOperationError   some items of a bulk operation failed (``.failures``), the rest were done
    │   └── MissingRootError     (also a KeyError) the bucket or container does not exist (yet)
    └── ValueReplacedError       (also an OSError) the value a ``d.open()`` file was reading was replaced

A missing key is always a ``KeyError`` (``MissingKeyError``, whose message
shows the key as people write it, ``'runs/r1'``, while ``args[0]`` stays the
normalized key, as in persidict 0.x; chained from the backend's not-found
error); bad keys and values are ``TypeError``/``ValueError``.  Messages say
what to do next.  Every one of
them survives ``pickle`` with its attributes, so an error raised in a worker
process reaches the parent as itself (``multiprocessing`` and process pools
pickle exceptions).
"""

from __future__ import annotations

import errno
from typing import Any

__all__ = [
    "BackendError",
    "BulkOperationError",
    "ConcurrencyConflictError",
    "MissingKeyError",
    "MissingRootError",
    "MutationPolicyError",
    "PersiDictError",
    "ValueReplacedError",
]


def plain_key(key: Any) -> str:
    """A key as people write it in messages: ``total``, ``runs/r1`` (a key tuple's parts joined by ``/``)."""
    strings = getattr(key, "strings", key)
    if isinstance(strings, tuple) and strings and all(isinstance(part, str) for part in strings):
        return "/".join(strings)
    return str(key)


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
        super().__init__(
            f"other writers kept changing key {plain_key(key)!r}: gave up after {attempts} attempt(s), nothing "
            "was written. Call again, let it retry longer (n_retries=None retries until it succeeds; "
            "RetryConfig(conflict_timeout=SECONDS) gives every call of the store more time), or have fewer "
            "writers on one key"
        )
        self.key = key
        self.attempts = attempts


class MissingKeyError(KeyError):
    """A key the store does not hold: a plain ``KeyError`` to every ``except KeyError``.

    ``args[0]`` is the normalized key (a ``NonEmptySafeStrTuple``, as persidict
    0.x raises it); the message shows it as people write it: ``'runs/r1'``.
    """

    def __str__(self) -> str:
        return repr(plain_key(self.args[0])) if len(self.args) == 1 else super().__str__()


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
        shown = ", ".join(f"{plain_key(key)!r} ({type(error).__name__}: {error})"
                          for key, error in list(failures.items())[:5])
        more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
        super().__init__(f"{operation} failed for {len(failures)} key(s): {shown}{more}",
                         backend=backend, operation=operation)
        self.failures = failures


class MissingRootError(BackendError, KeyError):
    """The store's root, a bucket or a container, does not exist (a typo, or nothing written yet).

    A ``BackendError`` whose message names what is missing (``root``: "bucket
    'b'", ``url``: the store's), and a ``KeyError`` too, so code that treats a
    missing key as a cache miss (``get``, ``setdefault``, ``memoize``) goes on to
    write, and the write creates the bucket.  ``k in d`` is False.
    """

    def __init__(self, root: str, url: str, *, backend: str, operation: str, key: Any = None) -> None:
        super().__init__(f"the {root} does not exist: {url}. Check the name; a store on it creates it with its "
                         "first write (FsspecDict(..., create_root=True) creates it at once)",
                         backend=backend, operation=operation, key=key)
        self.root = root
        self.url = url

    def __str__(self) -> str:  # KeyError's would show the message's repr
        return str(self.args[0])


class ValueReplacedError(PersiDictError, OSError):
    """Another writer replaced the value a file of ``d.open(key)`` was reading, after part of it was read.

    A remote file is read in ranges, each pinned to the version it was opened
    at: the rest of that version is gone, and the bytes already handed out
    cannot be taken back, so the file cannot go on.  Open the key again to
    read the new version (``d[key]`` starts again by itself).
    """

    def __init__(self, path: str) -> None:
        super().__init__(errno.ESTALE, f"{path} was replaced by another writer while it was read: the bytes read so "
                         "far belong to the version opened, the rest of it is gone. Open the key again to read the "
                         "new version")
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path,)  # OSError keeps errno and strerror outside __dict__


# Raised in workers and stored in values: pickled under persidict 0.x's module path.
for _cls in (PersiDictError, MutationPolicyError, ConcurrencyConflictError, BackendError, BulkOperationError,
             MissingKeyError, MissingRootError, ValueReplacedError):
    _cls.__module__ = "persidict.exceptions"
