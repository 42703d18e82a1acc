"""``persidict.memoize``: stable argument digests, and one execution per key across threads and processes.

Real stores only: a folder (FileDirDict), memory (LocalDict) and S3 (moto's
server).  Nothing here asserts how long anything takes: processes start
behind a barrier, and the lease tests wait for expiry by polling.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
import time
import uuid
from collections import OrderedDict, namedtuple
from decimal import Decimal
from fractions import Fraction
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import pytest

from persidict import FileDirDict, FsspecDict, LocalDict, PersiDict, SafeStrTuple
from persidict.pipelines.memoize import Lease, MemoizedFunction, Result, memoize

from ..servers.moto_s3 import MotoS3
from . import memoize_workers as workers

REPO = Path(__file__).resolve().parents[2]
WAIT = 120  # seconds: a generous bound for anything that should happen "soon"


# --- stores ---------------------------------------------------------------------------------


def _s3_store(moto_s3: MotoS3) -> FsspecDict[Any]:
    moto_s3.reset()
    return FsspecDict(f"s3://{moto_s3.new_bucket_name()}/memo", storage_options=moto_s3.storage_options())


@pytest.fixture(params=["folder", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> PersiDict[Any]:
    """A fresh store of each kind memoize is tested on."""
    if request.param == "folder":
        return FileDirDict(base_dir=str(tmp_path / "store"))
    if request.param == "memory":
        return LocalDict()
    return _s3_store(request.getfixturevalue("moto_s3"))


@pytest.fixture
def s3_store(moto_s3: MotoS3) -> FsspecDict[Any]:
    return _s3_store(moto_s3)


@pytest.fixture
def counter_dir(tmp_path: Path) -> str:
    """Where the bodies of memoize_workers count their executions."""
    return str(tmp_path / "counter")


def _probe(*args: Any, **kwargs: Any) -> None:
    """A body whose keys the digest tests compare."""


def key_of(*args: Any, **kwargs: Any) -> str:
    """The digest of a call with these arguments."""
    return memoize(LocalDict())(_probe).key(*args, **kwargs)[-1]


def _stored_value(store: PersiDict[Any], key: Any) -> Any:
    """The value of the ``Result`` stored under ``key`` (``AssertionError`` if it holds something else)."""
    record = store[key]
    assert isinstance(record, Result)
    return record.value


def square(a: int, b: int = 2) -> int:
    """a ** b."""
    return int(a**b)


# --- the key --------------------------------------------------------------------------------


def test_key_names_the_function_its_code_version_and_the_digest() -> None:
    key = memoize(LocalDict())(square).key(3)
    assert key[:3] == ("memoize", __name__, "square")
    assert key[3].startswith("code=") and len(key[3]) == len("code=") + 32 and int(key[3][5:], 16) >= 0
    assert len(key[4]) == 64 and int(key[4], 16) >= 0
    assert memoize(LocalDict(), version=2)(square).key(3)[3] == "v=2"  # a version replaces the fingerprint


def test_positional_keyword_and_default_arguments_share_a_key() -> None:
    f = memoize(LocalDict())(square)
    assert f.key(1, 2) == f.key(1, b=2) == f.key(a=1, b=2) == f.key(1) == f.key(b=2, a=1)
    assert f.key(1, 3) != f.key(1)


def keyword_only(x: int = 1, *, y: int = 2) -> int:
    return x + y


def positional_only(a: int, /, b: int = 2, *rest: int, **options: int) -> int:
    return a + b


def test_every_signature_shape_binds_defaults_before_digesting() -> None:
    k = memoize(LocalDict())(keyword_only)
    assert k.key() == k.key(1) == k.key(1, y=2) == k.key(y=2, x=1)
    assert k.key() != k.key(y=3)
    p = memoize(LocalDict())(positional_only)
    assert p.key(1) == p.key(1, 2) == p.key(1, b=2)
    assert p.key(1, 2, 3) != p.key(1, 2) != p.key(1, 2, c=3)


def test_arguments_that_do_not_fit_the_signature_raise_before_any_storage_access() -> None:
    f = memoize(LocalDict())(square)
    with pytest.raises(TypeError):
        f(1, 2, 3)  # type: ignore[call-arg]
    assert len(f.store) == 0


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        (1, True),
        (1, "1"),
        (1.0, True),
        (0, False),
        (0.0, -0.0),
        ((1, 2), [1, 2]),
        ([1, [2]], [[1], 2]),
        (("ab",), ("a", "b")),
        ("1", b"1"),
        (b"1", bytearray(b"1")),
        ({1}, frozenset({1})),
        ({1: 2}, [(1, 2)]),
        (None, "None"),
        (datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2)),
        (Decimal("1.0"), Decimal("1.00")),
        (Fraction(1, 2), 0.5),
        (PurePosixPath("a/b"), "a/b"),
        (PurePosixPath("a"), PureWindowsPath("a")),
        (SafeStrTuple("a", "b"), ("a", "b")),
        (np.array([1, 2]), np.array([1.0, 2.0])),
        (np.array([1, 2]), np.array([[1, 2]])),
        (np.float64(1.0), 1.0),
        (np.array(1.0), np.float64(1.0)),
    ],
    ids=repr,
)
def test_different_arguments_get_different_digests(a: Any, b: Any) -> None:
    assert key_of(a) != key_of(b)


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Shade(enum.IntEnum):
    DARK = 1


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float


@dataclasses.dataclass(frozen=True)
class Vector:
    x: float
    y: float


Pair = namedtuple("Pair", "left right")


class Label(str):
    """A str subclass: keyed by its class too."""


def test_richer_types_are_keyed_by_class_and_content() -> None:
    assert key_of(Point(1, 2)) == key_of(Point(1, 2))
    assert key_of(Point(1, 2)) != key_of(Point(2, 1))
    assert key_of(Point(1, 2)) != key_of(Vector(1, 2))
    assert key_of(Pair(1, 2)) != key_of((1, 2))
    assert key_of(Pair(1, 2)) == key_of(Pair(left=1, right=2))
    assert key_of(Color.RED) != key_of(Color.BLUE) != key_of(2)
    assert key_of(Shade.DARK) != key_of(1)
    assert key_of(Label("x")) != key_of("x")
    assert key_of(OrderedDict(a=1)) != key_of({"a": 1})
    assert key_of(uuid.UUID(int=1)) != key_of(uuid.UUID(int=2))
    assert key_of(datetime.timedelta(days=1)) == key_of(datetime.timedelta(hours=24))
    utc = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    assert key_of(utc) != key_of(utc.replace(tzinfo=None))
    assert key_of(datetime.time(1, 2, tzinfo=datetime.UTC)) != key_of(datetime.time(1, 2))
    assert key_of(10**5000) != key_of(10**5000 + 1)  # beyond str(int)'s 4300-digit limit


def test_order_of_dicts_and_sets_does_not_matter() -> None:
    assert key_of({"a": 1, "b": 2}) == key_of({"b": 2, "a": 1})
    words = [f"w{i}" for i in range(50)]
    assert key_of(set(words)) == key_of({words[i] for i in range(49, -1, -1)})
    assert key_of(frozenset(words)) == key_of(frozenset(reversed(words)))
    assert key_of({1, "a", (2, 3)}) == key_of({(2, 3), "a", 1})


def test_equal_values_share_a_key() -> None:
    assert key_of(float("nan")) == key_of(float("nan"))
    assert key_of(np.arange(6).reshape(2, 3)) == key_of(np.arange(6).reshape(2, 3).copy(order="F"))
    assert key_of(np.array([{"a": 1}], dtype=object)) == key_of(np.array([{"a": 1}], dtype=object))
    assert key_of(SafeStrTuple("a", "b")) == key_of(SafeStrTuple(("a", "b")))


def test_the_digest_is_pinned() -> None:
    # Changing the encoding silently orphans every cached result: bump this only on purpose.
    assert workers.sample_key() == "46b623486762759d0063f1e2cce44c855dd9706b897d5d39dbecef4ef4e5aed3"


def test_the_digest_is_the_same_in_processes_with_other_hash_seeds() -> None:
    digests = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-m", "tests.pipelines.memoize_workers"],
            cwd=REPO, env=env, capture_output=True, text=True,
            timeout=WAIT, check=True,
        )
        digests.add(run.stdout.strip())
    assert digests == {workers.sample_key()}


def test_memoize_does_not_import_numpy() -> None:
    code = "import sys, persidict.pipelines.memoize; print('numpy' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=WAIT,
                         check=True)
    assert run.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("make_argument", "where", "type_name"),
    [
        (lambda path: open(path, "w"), "arg", "TextIOWrapper"),  # noqa: SIM115 - closed by the test
        (lambda path: (lambda: 1), "arg", "function"),
        (lambda path: object(), "arg", "object"),
        (lambda path: {"paths": [1, object()]}, "arg['paths'][1]", "object"),
        (lambda path: Point(1, object()), "arg.y", "object"),  # type: ignore[arg-type]
        (lambda path: {object()}, "arg{...}", "object"),
    ],
    ids=["file", "lambda", "object", "nested", "dataclass-field", "set-member"],
)
def test_undigestible_arguments_raise_type_error_naming_them(
    tmp_path: Path, make_argument: Any, where: str, type_name: str
) -> None:
    def take(arg: Any) -> None:
        """Never runs."""

    f = memoize(LocalDict(), name="take")(take)
    argument = make_argument(tmp_path / "file.txt")
    try:
        with pytest.raises(TypeError) as caught:
            f(argument)
    finally:
        if hasattr(argument, "close"):
            argument.close()
    message = str(caught.value)
    assert "argument 'arg' of " in message and ".take()" in message
    assert f"{where} is a " in message and type_name in message
    assert len(f.store) == 0


def test_a_str_subclass_with_attributes_is_undigestible() -> None:
    tagged = Label("x")
    tagged.note = "not part of the str"  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match=r"tests\.pipelines\.test_memoize\.Label"):
        key_of(tagged)


_SENTINEL = object()


def with_sentinel(x: int, marker: object = _SENTINEL) -> bool:
    """Whether ``marker`` was left out."""
    return marker is _SENTINEL


def test_a_parameter_left_at_a_sentinel_default_is_keyed_as_the_default() -> None:
    f = memoize(LocalDict())(with_sentinel)
    assert f(1) is True and f.key(1) == f.key(1, _SENTINEL)
    with pytest.raises(TypeError, match="argument 'marker'"):
        f(1, object())


# --- the function's identity ----------------------------------------------------------------


def test_lambdas_and_nested_functions_need_a_name() -> None:
    def nested(x: int) -> int:
        return x

    for func in (lambda x: x, nested):
        with pytest.raises(TypeError, match="name="):
            memoize(LocalDict())(func)
    store: LocalDict[Any] = LocalDict()
    double = memoize(store, name="double")(lambda x: 2 * x)
    assert double(4) == 8 and double.key(4)[2] == "double"
    assert memoize(store, name="double")(lambda x: -1)(4) == -1  # same name, other code: another key
    assert memoize(store, name="double")(lambda x: 2 * x).call_with_info(4).computed is False  # same code
    assert memoize(LocalDict(), name="my nested/fn")(nested).key(1)[2].startswith("my_nested_fn~")


class Calculator:
    def triple(self, x: int) -> int:
        return 3 * x


def test_bound_methods_and_static_method_objects_are_refused() -> None:
    with pytest.raises(TypeError, match="bound method"):
        memoize(LocalDict())(Calculator().triple)
    with pytest.raises(TypeError, match="@staticmethod above @memoize"):
        memoize(LocalDict())(staticmethod(square))


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="mutable"):
        memoize(LocalDict(append_only=True))
    with pytest.raises(ValueError, match="positive"):
        memoize(LocalDict(), lease=0)
    with pytest.raises(ValueError, match="positive"):
        memoize(LocalDict(), poll=-1)


@dataclasses.dataclass(frozen=True)
class Scaler:
    factor: int

    @memoize(LocalDict())
    def scale(self, x: int) -> int:
        return self.factor * x

    @staticmethod
    @memoize(LocalDict())
    def offset(x: int) -> int:
        return x + 1


class Opaque:
    @memoize(LocalDict())
    def scale(self, x: int) -> int:
        return x


def test_methods_key_self_as_an_argument() -> None:
    assert Scaler(2).scale(5) == 10 and Scaler(3).scale(5) == 15
    assert Scaler.scale.key(Scaler(2), 5) != Scaler.scale.key(Scaler(3), 5)
    assert Scaler(2).offset(1) == Scaler.offset(1) == 2
    with pytest.raises(TypeError, match="argument 'self'"):
        Opaque().scale(1)


@memoize(LocalDict())
def cube(x: int) -> int:
    """x ** 3."""
    return x**3


def test_the_decorated_function_keeps_its_metadata_and_pickles_by_reference() -> None:
    assert isinstance(cube, MemoizedFunction)
    assert cube.__name__ == "cube" and cube.__doc__ == "x ** 3."
    assert cube.__wrapped__(2) == 8
    assert pickle.loads(pickle.dumps(cube)) is cube
    assert "tests.pipelines.test_memoize.cube" in repr(cube)


# --- caching and the lease protocol, in one process -----------------------------------------


def _counting(
    store: PersiDict[Any], name: str, body: Any, **options: Any
) -> tuple[MemoizedFunction[..., Any], list[Any]]:
    """``body`` memoized under ``name``, and the list of the arguments it ran with."""
    runs: list[Any] = []

    def counted(*args: Any) -> Any:
        runs.append(args)
        return body(*args)

    return memoize(store, name=name, **options)(counted), runs


def test_the_body_runs_once_and_later_calls_read_the_result(store: PersiDict[Any]) -> None:
    f, runs = _counting(store, "add", lambda a, b: a + b)
    assert [f(1, 2), f(1, 2), f(1, 2), f(2, 2)] == [3, 3, 3, 4]
    assert runs == [(1, 2), (2, 2)]
    assert _stored_value(store, f.key(1, 2)) == (3)
    again, again_runs = _counting(store, "add", lambda a, b: a + b)  # the same code, as another process has it
    assert again(1, 2) == 3 and again_runs == []
    other, _ = _counting(store, "add", lambda *args: "other body")  # other code under the same name
    assert other(1, 2) == "other body"


def test_exceptions_reach_the_caller_and_are_not_cached(store: PersiDict[Any]) -> None:
    def fail_first(x: int) -> int:
        if len(runs) == 1:
            raise ValueError("first run fails")
        return x

    f, runs = _counting(store, "flaky", fail_first)
    with pytest.raises(ValueError, match="first run fails"):
        f(7)
    assert f.key(7) not in store  # the lease was released
    assert f(7) == 7 and f(7) == 7
    assert len(runs) == 2


def test_a_result_the_store_cannot_hold_is_raised_and_not_cached(tmp_path: Path) -> None:
    store: FileDirDict[Any] = FileDirDict(base_dir=str(tmp_path))
    f = memoize(store, name="unpicklable")(lambda: lambda: None)
    with pytest.raises(TypeError):
        f()
    assert len(store) == 0


def test_a_new_version_recomputes_and_keeps_the_old_results(store: PersiDict[Any]) -> None:
    v1, runs1 = _counting(store, "model", lambda x: ("v1", x), version=1)
    v2, runs2 = _counting(store, "model", lambda x: ("v2", x), version=2)
    assert v1(5) == ("v1", 5) and v2(5) == ("v2", 5) and v1(5) == ("v1", 5)
    assert len(runs1) == len(runs2) == 1
    assert len(store) == 2


def test_forget_deletes_the_cached_result(store: PersiDict[Any]) -> None:
    f, runs = _counting(store, "forgettable", lambda x: x + 1)
    assert f(1) == 2
    assert f.forget(1) is True
    assert f.forget(1) is False and f.forget(2) is False
    assert f(1) == 2 and len(runs) == 2


def test_a_json_store_holds_the_records(tmp_path: Path) -> None:
    store: FileDirDict[Any] = FileDirDict(base_dir=str(tmp_path), serialization_format="json")
    f, runs = _counting(store, "to_json", lambda x: {"x": x, "tags": {"a"}})
    assert f(1) == f(1) == {"x": 1, "tags": {"a"}}
    assert len(runs) == 1 and _stored_value(store, f.key(1)) == ({"x": 1, "tags": {"a"}})


def test_the_cached_call_is_one_request_on_s3(s3_store: FsspecDict[Any], moto_s3: MotoS3) -> None:
    f = memoize(s3_store)(square)
    assert f(3) == 9
    with moto_s3.counting() as seen:
        assert f(3) == 9
    assert [method for method, _ in seen] == ["GET"]


def test_an_expired_lease_is_taken_over(store: PersiDict[Any]) -> None:
    f, runs = _counting(store, "orphaned", lambda x: x * 10)
    store[f.key(4)] = Lease("a claimer that crashed", time.time() - 1)
    assert f(4) == 40
    assert runs == [(4,)] and _stored_value(store, f.key(4)) == (40)


def test_a_claim_is_a_coordination_lease_whose_token_follows_the_expired_one(store: PersiDict[Any]) -> None:
    """memoize's claims are the leases of persidict.coordination: a takeover carries the next fencing token."""
    held: list[Any] = []
    f, _ = _counting(store, "fenced", lambda x: held.append(store[f.key(x)]) or x)
    store[f.key(4)] = Lease("a claimer that crashed", time.time() - 1, token=7)
    assert f(4) == 4
    assert isinstance(held[0], Lease) and held[0].token == 8 and held[0].owner != "a claimer that crashed"


def test_a_record_memoize_did_not_write_is_an_error(store: PersiDict[Any]) -> None:
    f, _ = _counting(store, "foreign", lambda x: x)
    store[f.key(1)] = "something else"
    with pytest.raises(TypeError, match="holds a str"):
        f(1)


class Gate:
    """A body that signals when it starts and runs until released."""

    def __init__(self, result: Any = "done", error: Exception | None = None) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.result, self.error = result, error

    def __call__(self, x: Any) -> Any:
        self.started.set()
        assert self.release.wait(WAIT)
        if self.error is not None:  # raised by the first run only
            error, self.error = self.error, None
            raise error
        return self.result


class Caller(threading.Thread):
    """Calls ``f(x)`` in a thread and keeps its result or exception."""

    def __init__(self, f: Any, x: Any) -> None:
        super().__init__(daemon=True)
        self.f, self.x = f, x
        self.result: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.f(self.x)
        except BaseException as error:
            self.error = error

    def outcome(self) -> Any:
        self.join(WAIT)
        assert not self.is_alive()
        return self.error if self.error is not None else self.result


def _wait_until(condition: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_a_live_claimer_renews_its_lease_and_is_not_taken_over(store: PersiDict[Any]) -> None:
    first_body = Gate(result="first")
    first, first_runs = _counting(store, "long", first_body, lease=1.0, poll=0.05)
    second, second_runs = _counting(store, "long", first_body, lease=1.0, poll=0.05)  # as another process
    claimer = Caller(first, 1)
    assert first_body.started.wait(WAIT)
    claimed = store[first.key(1)]
    waiter = Caller(second, 1)
    _wait_until(lambda: time.time() > claimed.expires_at + 2.0)  # three lease periods past the first expiry
    renewed = store[first.key(1)]
    assert isinstance(renewed, Lease) and renewed.owner == claimed.owner and renewed.expires_at > claimed.expires_at
    assert waiter.is_alive() and second_runs == []
    first_body.release.set()
    assert claimer.outcome() == waiter.outcome() == "first"
    assert len(first_runs) == 1 and second_runs == []


def test_after_the_claimer_raises_a_waiter_claims_and_computes(store: PersiDict[Any]) -> None:
    failing = Gate(result="computed by the waiter", error=RuntimeError("claimer failed"))
    first, _ = _counting(store, "handover", failing, poll=0.05)
    second, second_runs = _counting(store, "handover", failing, poll=0.05)  # the same code, as another process
    claimer = Caller(first, 1)
    assert failing.started.wait(WAIT)
    waiter = Caller(second, 1)
    failing.release.set()
    assert isinstance(claimer.outcome(), RuntimeError)
    assert waiter.outcome() == "computed by the waiter"
    assert len(second_runs) == 1 and _stored_value(store, first.key(1)) == ("computed by the waiter")


def test_a_claimer_that_lost_its_lease_returns_its_value_and_stores_nothing(store: PersiDict[Any]) -> None:
    body = Gate(result="late")
    f, _ = _counting(store, "usurped", body)
    claimer = Caller(f, 1)
    assert body.started.wait(WAIT)
    usurper = Lease("the new owner", time.time() + 600)
    store[f.key(1)] = usurper  # as if a waiter had taken the lease over
    body.release.set()
    assert claimer.outcome() == "late"
    assert store[f.key(1)] == usurper


def test_concurrent_threads_run_the_body_once(store: PersiDict[Any]) -> None:
    body = Gate(result=42)
    f, runs = _counting(store, "threads", body, poll=0.05)
    callers = [Caller(f, 1) for _ in range(6)]
    assert body.started.wait(WAIT)
    body.release.set()
    assert [caller.outcome() for caller in callers] == [42] * 6
    assert len(runs) == 1


# --- across processes -----------------------------------------------------------------------


def _spawn(target: Any, *args: Any) -> Any:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    return process


def _run_four_racing_processes(store: PersiDict[Any], counter_dir: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    processes = [_spawn(workers.call_slow_square, store, 12, counter_dir, barrier, results) for _ in range(4)]
    outcomes = [results.get(timeout=WAIT) for _ in processes]
    for process in processes:
        process.join(WAIT)
        assert process.exitcode == 0
    assert len({pid for pid, _ in outcomes}) == 4
    assert [value for _, value in outcomes] == [144] * 4
    assert workers.executions(counter_dir) == 1

    later = context.Queue()  # a process that arrives after the result is stored
    process = _spawn(workers.call_slow_square, store, 12, counter_dir, None, later)
    assert later.get(timeout=WAIT)[1] == 144
    process.join(WAIT)
    assert process.exitcode == 0 and workers.executions(counter_dir) == 1


@pytest.mark.processes
def test_four_processes_run_the_body_once_on_a_folder(tmp_path: Path, counter_dir: str) -> None:
    _run_four_racing_processes(FileDirDict(base_dir=str(tmp_path / "store")), counter_dir)


@pytest.mark.processes
def test_four_processes_run_the_body_once_on_s3(
    s3_store: FsspecDict[Any], moto_s3: MotoS3, counter_dir: str
) -> None:
    _run_four_racing_processes(s3_store, counter_dir)
    square12 = memoize(s3_store)(workers.slow_square)
    with moto_s3.counting() as seen:
        assert square12(12, counter_dir) == 144
    assert len(seen) == 1 and workers.executions(counter_dir) == 1


@pytest.mark.processes
@pytest.mark.parametrize("kind", ["folder", "s3"])
def test_the_lease_of_a_crashed_claimer_expires_and_another_caller_computes(
    kind: str, tmp_path: Path, counter_dir: str, request: pytest.FixtureRequest
) -> None:
    store: PersiDict[Any] = (
        FileDirDict(base_dir=str(tmp_path / "store")) if kind == "folder" else request.getfixturevalue("s3_store")
    )
    crashed = _spawn(workers.claim_then_crash, store, 5, counter_dir)
    crashed.join(WAIT)
    assert crashed.exitcode == 1 and workers.executions(counter_dir) == 1
    f = memoize(store, lease=1.0, poll=0.05)(workers.crash_first_time)
    orphan = store[f.key(5, counter_dir)]
    assert isinstance(orphan, Lease)  # left behind by the dead process
    assert f(5, counter_dir) == 25
    assert workers.executions(counter_dir) == 2 and _stored_value(store, f.key(5, counter_dir)) == (25)
