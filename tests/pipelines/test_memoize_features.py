"""memoize as a joblib user expects it: opening stores, what a call did, listing and deleting results,
expiry, waiting that is not silent, dead claimers taken over at once, and Jupyter's view."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from persidict import FileDirDict, FsspecDict, LocalDict, PersiDict
from persidict.pipelines.memoize import Lease, MemoizedFunction, Result, memoize
from persidict.pipelines.memoize.lease import claimer_is_dead, host_identity, new_lease, process_started

from . import memoize_workers as workers

WAIT = 120


def square(x: int) -> int:
    return x * x


def cube(x: int) -> int:
    return x**3


# --- opening stores and decorating ----------------------------------------------------------


def test_a_folder_path_or_a_url_opens_a_store_as_joblib_memory_does(tmp_path: Path) -> None:
    by_path = memoize(str(tmp_path / "cache"))(square)
    assert isinstance(by_path.store, FileDirDict) and by_path.store.base_dir == str(tmp_path / "cache")
    assert by_path(3) == 9 and memoize(tmp_path / "cache")(square).call_with_info(3).computed is False
    by_url = memoize("memory://memoize-test-url")(square)
    assert type(by_url.store) is FsspecDict and by_url(4) == 16


def test_a_bare_decorator_fails_at_decoration_naming_the_right_form() -> None:
    with pytest.raises(TypeError, match=r"@memoize\(store\) or @memoize\('/path/to/folder'\).*not a bare @memoize"):
        @memoize  # type: ignore[arg-type]
        def f(x: int) -> int:
            return x


@pytest.mark.parametrize("store", [42, None, b"/tmp/x", ["a"]], ids=repr)
def test_a_store_of_the_wrong_type_is_a_type_error(store: Any) -> None:
    with pytest.raises(TypeError, match="store must be a PersiDict, a folder path or an fsspec URL"):
        memoize(store)


def test_expire_after_takes_timedeltas_seconds_and_texts() -> None:
    assert memoize(LocalDict(), expire_after="7d")(square).options.expire_after == 7 * 86400
    assert memoize(LocalDict(), expire_after=timedelta(minutes=15))(square).options.expire_after == 900
    for bad in (-1, 0, "7 days", float("nan")):
        with pytest.raises(ValueError):
            memoize(LocalDict(), expire_after=bad)


# --- what a call did ------------------------------------------------------------------------


def test_call_with_info_says_whether_the_result_was_computed_and_what_it_cost() -> None:
    f = memoize(LocalDict())(square)
    first, second = f.call_with_info(3), f.call_with_info(3)
    assert (first.value, first.computed, second.value, second.computed) == (9, True, 9, False)
    assert first.seconds >= 0 and second.seconds == first.seconds  # a read reports the stored computation's time
    assert first.key == second.key == f.key(3) and second.computed_at == first.computed_at
    assert f.stats.hits == 1 and f.stats.misses == 1 and f.stats.seconds_saved == first.seconds


def test_cached_calls_list_this_functions_results_and_not_claims_in_flight() -> None:
    store: LocalDict[Any] = LocalDict()
    f, g = memoize(store)(square), memoize(store)(cube)
    f(1), f(2), g(1)
    store[f.key(3)] = new_lease(600)  # a computation in flight
    calls = f.cached_calls()
    assert [call.key for call in calls] == [f.key(1), f.key(2)]
    assert [call.arguments for call in calls] == ["x=1", "x=2"] and all(call.seconds is not None for call in calls)


def test_forget_and_clear_delete_only_this_functions_results() -> None:
    store: LocalDict[Any] = LocalDict()
    f, g = memoize(store)(square), memoize(store)(cube)
    f(1), f(2), f(5), g(1)
    live = new_lease(600)
    store[f.key(3)] = live
    assert f.forget(5) is True and f.forget(5) is False
    assert f.clear() == 2
    assert f.cached_calls() == [] and store[f.key(3)] == live and g.call_with_info(1).computed is False


# --- expiry ---------------------------------------------------------------------------------


def test_an_expired_result_is_recomputed_and_a_fresh_one_is_read() -> None:
    store: LocalDict[Any] = LocalDict()
    runs: list[int] = []

    def measure(x: int) -> int:
        runs.append(x)
        return len(runs)

    f = memoize(store, name="measure", expire_after=timedelta(hours=1))(measure)
    store[f.key(1)] = Result(0, computed_at=time.time() - 7200)  # two hours old
    store[f.key(2)] = Result(0, computed_at=time.time() - 60)
    assert f.call_with_info(1).computed is True and f(2) == 0
    assert f.call_with_info(1).computed is False and runs == [1]


def test_an_expired_result_is_recomputed_once_by_concurrent_callers() -> None:
    store: LocalDict[Any] = LocalDict()
    started, release, runs = threading.Event(), threading.Event(), []

    def slow(x: int) -> str:
        runs.append(x)
        started.set()
        assert release.wait(WAIT)
        return "new"

    f = memoize(store, name="slow", expire_after=60, poll=0.02)(slow)
    store[f.key(1)] = Result("old", computed_at=time.time() - 3600)
    results: list[Any] = []
    callers = [threading.Thread(target=lambda: results.append(f(1))) for _ in range(5)]
    for caller in callers:
        caller.start()
    assert started.wait(WAIT)
    release.set()
    for caller in callers:
        caller.join(WAIT)
    assert results == ["new"] * 5 and runs == [1]


# --- waiting, and claims of dead processes --------------------------------------------------


def _hold_claim(f: MemoizedFunction[..., Any], x: Any) -> tuple[threading.Event, threading.Thread]:
    """A thread that claims ``f(x)`` and holds the claim until the returned event is set."""
    release = threading.Event()
    thread = threading.Thread(target=f, args=(x, release), daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not isinstance(f.store.get(f.key(x, release)), Lease):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return release, thread


def gated(x: int, release: Any) -> int:
    assert release.wait(WAIT)
    return x


def test_a_waiting_caller_is_told_once_and_shown_a_bar(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    f = memoize(LocalDict(), poll=0.02, progress=True, ignore=("release",))(gated)
    release, holder = _hold_claim(f, 7)
    threading.Timer(0.5, release.set).start()  # the holder finishes while the other call waits
    with caplog.at_level(logging.WARNING, logger="persidict.pipelines.memoize"):
        info = f.call_with_info(7, threading.Event())
    holder.join(WAIT)
    waiting = [record.getMessage() for record in caplog.records if "waiting for" in record.getMessage()]
    assert len(waiting) == 1 and "gated(x=7)" in waiting[0] and "is computing it" in waiting[0]
    assert info.computed is False and info.waited > 0
    assert "waiting for gated(x=7)" in capsys.readouterr().err


def test_whether_a_claimer_is_dead_is_told_by_host_pid_and_start_time() -> None:
    me = new_lease(600)
    assert not claimer_is_dead(me)
    assert claimer_is_dead(Lease("gone", time.time() + 600, host_identity(), 2**22 + 12345, ""))
    assert not claimer_is_dead(Lease("elsewhere", time.time() + 600, "another-host|x|y", 2**22 + 12345, ""))
    if process_started(os.getpid()):  # Linux: a reused pid has another start time
        assert claimer_is_dead(Lease("reused", time.time() + 600, host_identity(), os.getpid(), "1"))


@pytest.mark.processes
def test_the_claim_of_a_killed_process_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    store: PersiDict[Any] = FileDirDict(base_dir=str(tmp_path / "store"))
    flags = tmp_path / "flags"
    flags.mkdir()
    (flags / "block").touch()
    f = memoize(store, lease=600.0)(workers.double_unless_blocked)
    key = f.key(21, str(flags))
    claimer = multiprocessing.get_context("spawn").Process(
        target=workers.claim_and_block, args=(store, 21, str(flags)))
    claimer.start()
    deadline = time.monotonic() + WAIT
    while not isinstance(store.get(key), Lease):
        assert time.monotonic() < deadline and claimer.is_alive()
        time.sleep(0.02)
    assert claimer.pid is not None
    os.kill(claimer.pid, signal.SIGKILL)  # not reaped yet: a zombie, dead all the same
    (flags / "block").unlink()
    killed_at = time.monotonic()
    assert f(21, str(flags)) == 42
    taken_over_after = time.monotonic() - killed_at
    claimer.join(WAIT)
    assert taken_over_after < 60, f"took {taken_over_after:.1f} s; the lease runs 600 s"
    assert isinstance(store[key], Result)


# --- Jupyter's view -------------------------------------------------------------------------


def test_the_html_views_of_a_memoized_function_and_a_store() -> None:
    store: LocalDict[Any] = LocalDict()
    f = memoize(store)(square)
    f(2), f(2), f(3)
    page = f._repr_html_()
    assert "memoized square" in page and "tests.pipelines.test_memoize_features.square" in page
    assert "hits</th><td style='text-align:left'>1 " in page and "misses</th><td style='text-align:left'>2 " in page
    view = store._repr_html_()
    assert "LocalDict" in view and ">2</td>" in view and "memoize/tests.pipelines.test_memoize_features/square" in view


def test_html_views_and_reprs_mask_credentials(tmp_path: Path) -> None:
    options = {"auto_mkdir": True, "secret": "hunter2", "client_kwargs": {"token": "t0k"}}
    store: FsspecDict[Any] = FsspecDict(f"file://{tmp_path}", storage_options=options)
    f = memoize(store)(square)
    for text in (store._repr_html_(), f._repr_html_(), repr(f)):
        assert "hunter2" not in text and "t0k" not in text
    assert "***" in store._repr_html_()


class NoSubdicts(LocalDict[Any]):
    """A store that, like some wrappers, has no subdicts."""

    def get_subdict(self, prefix_key: Any) -> Any:
        raise NotImplementedError


def test_listing_and_clearing_work_on_stores_without_subdicts() -> None:
    store = NoSubdicts()
    f, g = memoize(store)(square), memoize(store)(cube)
    f(1), f(2), g(2)
    assert [call.key for call in f.cached_calls()] == [f.key(1), f.key(2)]
    assert f.clear() == 2 and f.cached_calls() == [] and g.call_with_info(2).computed is False


def test_a_module_level_instance_of_your_class_counts_its_methods(tmp_path: Path) -> None:
    from .test_memoize_code import load

    source = """
        import dataclasses

        @dataclasses.dataclass(frozen=True)
        class Settings:
            k: int

            def apply(self, x):
                return self.k * x

        SETTINGS = Settings(2)

        def f(x):
            return SETTINGS.apply(x)
    """
    before = load(tmp_path, source)
    after = load(tmp_path, source.replace("self.k * x", "self.k + x"))
    assert memoize(LocalDict())(before.f).code_version != memoize(LocalDict())(after.f).code_version


def test_a_result_of_the_first_release_expires_by_its_write_time() -> None:
    store: LocalDict[Any] = LocalDict()
    f = memoize(store, expire_after=3600)(square)
    store[f.key(3)] = Result(9)  # no computed_at: written by a release before expiry existed
    assert f.call_with_info(3).computed is False  # written just now: fresh
    g = memoize(store, expire_after=0.001)(square)
    store[g.key(4)] = Result(0)
    deadline = time.monotonic() + WAIT
    while time.time() - store.timestamp(g.key(4)) <= 0.001:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert g.call_with_info(4).value == 16
