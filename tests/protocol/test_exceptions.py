"""persidict's own exceptions: one root, their builtin bases, and the trip through a worker process.

``multiprocessing`` and process pools send an exception raised in a worker
back to the parent by pickling it.  An exception whose constructor takes
arguments other than its ``args`` (keyword-only fields, extra attributes)
breaks there by default: the parent gets a ``TypeError`` while unpickling, a
``MaybeEncodingError``, or a ``BrokenProcessPool``.  These tests raise each of
persidict's exceptions, and real store failures, in SPAWN workers and catch
them in the parent by their own type, attributes intact.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import persidict
from persidict import (
    BackendError,
    ConcurrencyConflictError,
    FileDirDict,
    MissingKeyError,
    MissingRootError,
    MutationPolicyError,
    NonEmptySafeStrTuple,
    PersiDictError,
    ValueReplacedError,
)
from persidict import exceptions as exceptions_module

WORKER_TIMEOUT = 120.0
"""Seconds a spawned worker may take for one task (a spawn imports persidict afresh; CI machines are slow)."""

KEY = NonEmptySafeStrTuple("folder", "item")


def _samples() -> list[PersiDictError]:
    """One instance of every exception class, with every attribute set to a telling value."""
    return [
        PersiDictError("something went wrong"),
        MutationPolicyError("append-only"),
        MutationPolicyError("write-once"),
        ConcurrencyConflictError(KEY, 7),
        BackendError("list failed: injected", backend="s3", operation="list"),
        BackendError("read failed for key", backend="filesystem", operation="read", key=KEY),
        MissingRootError("bucket 'b'", "s3://b/p", backend="s3", operation="read", key=KEY),
        ValueReplacedError("b/p/item.pkl"),
    ]


def _state(error: BaseException) -> tuple[Any, ...]:
    """What must survive a trip: the type, ``args``, the message and every attribute."""
    return type(error), error.args, str(error), dict(vars(error))


# --- the hierarchy ---------------------------------------------------------------------------------
def test_the_exception_classes_are_the_public_ones() -> None:
    """The exceptions module exports exactly these classes, all public in ``persidict``."""
    names = {"PersiDictError", "MutationPolicyError", "ConcurrencyConflictError", "BackendError", "BulkOperationError",
             "MissingKeyError", "MissingRootError", "ValueReplacedError"}
    assert set(exceptions_module.__all__) == names
    assert names <= set(persidict.__all__)
    for name in names:
        assert getattr(persidict, name) is getattr(exceptions_module, name)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [(MutationPolicyError, TypeError), (ConcurrencyConflictError, RuntimeError), (BackendError, RuntimeError),
     (ValueReplacedError, OSError)],
)
def test_each_derives_from_the_root_and_keeps_its_builtin_base(cls: type, builtin: type) -> None:
    """Code written for plain dicts catches them by the builtin; persidict-aware code by the root."""
    assert issubclass(cls, PersiDictError)
    assert issubclass(cls, builtin)
    assert issubclass(PersiDictError, Exception)


def test_attributes_and_messages() -> None:
    """Each class keeps the fields docs/errors.md#exceptions names, and its documented message."""
    policy = MutationPolicyError("append-only")
    assert policy.policy == "append-only" and str(policy) == "append-only"
    conflict = ConcurrencyConflictError(KEY, 3)
    assert conflict.key == KEY and conflict.attempts == 3
    assert str(conflict) == (
        "other writers kept changing key 'folder/item': gave up after 3 attempt(s), nothing was written. Call "
        "again, let it retry longer (n_retries=None retries until it succeeds; RetryConfig(conflict_timeout=SECONDS) "
        "gives every call of the store more time), or have fewer writers on one key")
    backend = BackendError("boom", backend="gcs", operation="write")
    assert (str(backend), backend.backend, backend.operation, backend.key) == ("boom", "gcs", "write", None)
    root = MissingRootError("bucket 'b'", "s3://b/p", backend="s3", operation="list")
    assert (root.root, root.url, root.backend, root.operation) == ("bucket 'b'", "s3://b/p", "s3", "list")
    assert str(root) == ("the bucket 'b' does not exist: s3://b/p. Check the name; a store on it creates it with "
                         "its first write (FsspecDict(..., create_root=True) creates it at once)")
    assert isinstance(root, KeyError) and isinstance(root, BackendError)


def test_a_missing_key_shows_the_key_as_people_write_it() -> None:
    """``MissingKeyError``: a ``KeyError`` whose ``args[0]`` is the normalized key, whose message is plain."""
    error = MissingKeyError(KEY)
    assert isinstance(error, KeyError) and error.args == (KEY,)
    assert str(error) == "'folder/item'"
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is MissingKeyError and clone.args == (KEY,) and str(clone) == "'folder/item'"


# --- pickling in one process ------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("error", _samples(), ids=lambda e: f"{type(e).__name__}-{e.args[0]!s:.12}")
def test_every_exception_survives_pickle(error: PersiDictError, protocol: int) -> None:
    """Every protocol gives back the same class with the same args, message and attributes."""
    clone = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert _state(clone) == _state(error)


@pytest.mark.parametrize("error", _samples(), ids=lambda e: type(e).__name__)
def test_every_exception_survives_copy(error: PersiDictError) -> None:
    """``copy`` and ``deepcopy`` go through the same reduce: they must work too."""
    assert _state(copy.copy(error)) == _state(error)
    assert _state(copy.deepcopy(error)) == _state(error)


def test_a_pickled_store_error_keeps_its_key_type() -> None:
    """The key of a store error comes back as the ``NonEmptySafeStrTuple`` it was."""
    clone = pickle.loads(pickle.dumps(ConcurrencyConflictError(KEY, 2)))
    assert type(clone.key) is NonEmptySafeStrTuple and clone.key == KEY


# --- the worker side (module level, so that spawn workers can import them) ----------------------------
def raise_sample(index: int) -> None:
    """Raise ``_samples()[index]`` in the worker."""
    raise _samples()[index]


def overwrite_append_only(base_dir: str) -> None:
    """Overwrite a key of an append-only FileDirDict: MutationPolicyError("append-only")."""
    d: FileDirDict[Any] = FileDirDict(base_dir=base_dir, append_only=True)
    d["k"] = 1
    d["k"] = 2


def open_store_under_a_file(file_path: str) -> None:
    """Open a FileDirDict whose folder would sit inside a regular file: BackendError(operation="init")."""
    FileDirDict(base_dir=str(Path(file_path) / "store"))


def read_a_corrupt_value(base_dir: str) -> None:
    """Read a value whose file holds no valid pickle: BackendError(operation="decode", key=...)."""
    d: FileDirDict[Any] = FileDirDict(base_dir=base_dir)
    d[KEY] = 1
    Path(d.key_to_path(KEY)).write_bytes(b"definitely not a pickle")
    d[KEY]


def transform_while_someone_writes(base_dir: str) -> None:
    """A transformer that changes its own key meanwhile, with no retries: ConcurrencyConflictError."""
    d: FileDirDict[Any] = FileDirDict(base_dir=base_dir)
    d[KEY] = 0

    def interfering(value: int) -> int:
        d[KEY] = value + 100  # another writer wins every race
        return value + 1

    d.transform_item(KEY, transformer=interfering, n_retries=0)


# --- the parent side -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spawn_executor() -> Iterator[ProcessPoolExecutor]:
    """One spawn-started process pool for the module (spawning is the slow part)."""
    executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def spawn_pool() -> Iterator[Any]:
    """One spawn-started ``multiprocessing.Pool`` for the module."""
    pool = multiprocessing.get_context("spawn").Pool(processes=1)
    yield pool
    pool.terminate()
    pool.join()


Runner = Callable[..., Any]


@pytest.fixture(params=["ProcessPoolExecutor", "multiprocessing.Pool"])
def run_in_worker(request: pytest.FixtureRequest) -> Runner:
    """``run_in_worker(fn, *args)``: the call's result in a spawn worker, its exception re-raised here."""
    if request.param == "ProcessPoolExecutor":
        executor: ProcessPoolExecutor = request.getfixturevalue("spawn_executor")
        return lambda fn, *args: executor.submit(fn, *args).result(timeout=WORKER_TIMEOUT)
    pool = request.getfixturevalue("spawn_pool")
    return lambda fn, *args: pool.apply_async(fn, args).get(timeout=WORKER_TIMEOUT)


@pytest.mark.processes
@pytest.mark.parametrize("index", range(len(_samples())), ids=lambda i: type(_samples()[i]).__name__ + str(i))
def test_an_exception_raised_in_a_spawn_worker_is_caught_by_its_own_type(run_in_worker: Runner, index: int) -> None:
    """Each exception reaches the parent as itself: its own class, args, message and attributes."""
    expected = _samples()[index]
    with pytest.raises(type(expected)) as caught:
        run_in_worker(raise_sample, index)
    assert _state(caught.value) == _state(expected)


@pytest.mark.processes
def test_a_policy_error_from_a_real_store_reaches_the_parent(run_in_worker: Runner, tmp_path: Path) -> None:
    """An append-only store refusing an overwrite in a worker: the parent catches MutationPolicyError."""
    with pytest.raises(MutationPolicyError) as caught:
        run_in_worker(overwrite_append_only, str(tmp_path / "store"))
    assert caught.value.policy == "append-only" and str(caught.value) == "append-only"
    assert isinstance(caught.value, TypeError)


@pytest.mark.processes
def test_a_backend_error_from_a_failing_store_reaches_the_parent(run_in_worker: Runner, tmp_path: Path) -> None:
    """A store whose folder cannot be created (its parent is a file): BackendError with its fields."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(BackendError) as caught:
        run_in_worker(open_store_under_a_file, str(blocker))
    error = caught.value
    assert (error.backend, error.operation, error.key) == ("filesystem", "init", None)
    assert isinstance(error, RuntimeError)
    assert str(blocker) in str(error)


@pytest.mark.processes
def test_a_decode_error_keeps_its_key_across_processes(run_in_worker: Runner, tmp_path: Path) -> None:
    """A corrupt value read in a worker: BackendError whose ``key`` is the store's key object."""
    with pytest.raises(BackendError) as caught:
        run_in_worker(read_a_corrupt_value, str(tmp_path / "store"))
    error = caught.value
    assert (error.backend, error.operation) == ("filesystem", "decode")
    assert type(error.key) is NonEmptySafeStrTuple and error.key == KEY


@pytest.mark.processes
def test_a_concurrency_conflict_reaches_the_parent(run_in_worker: Runner, tmp_path: Path) -> None:
    """transform_item losing every race in a worker: ConcurrencyConflictError with key and attempts."""
    with pytest.raises(ConcurrencyConflictError) as caught:
        run_in_worker(transform_while_someone_writes, str(tmp_path / "store"))
    assert caught.value.key == KEY and caught.value.attempts == 1


@pytest.mark.processes
def test_the_pool_still_works_after_the_errors(run_in_worker: Runner) -> None:
    """No exception above broke the pool: a plain task still runs (no BrokenProcessPool), in another process."""
    assert run_in_worker(pow, 2, 10) == 1024
    assert run_in_worker(os.getpid) != os.getpid()
