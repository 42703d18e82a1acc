"""Atomic conditional operations under concurrent writers (docs/concurrency.md#atomicity)."""

from __future__ import annotations

import pathlib
import pickle
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from persidict import ALWAYS_RETRIEVE, ETAG_IS_THE_SAME

from .contract_helpers import INA, next_value, plain_value


@pytest.fixture
def fast_backoff(monkeypatch):
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda seconds: real_sleep(min(seconds, 0.002)))


def _run_threads(targets):
    errors = []

    def guarded(target):
        try:
            target()
        except BaseException as exc:  # reported below, with the thread's traceback
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    if errors:
        raise errors[0]


def test_threads_incrementing_lose_no_update(make_dict, fast_backoff):
    n_threads, n_increments = 3, 10

    def worker():
        d = make_dict()
        for _ in range(n_increments):
            d.transform_item("counter", transformer=lambda v: plain_value(1) if v is INA else next_value(v),
                             n_retries=None)

    _run_threads([worker] * n_threads)
    assert make_dict()["counter"] == plain_value(n_threads * n_increments)


@pytest.mark.insert_only
def test_insert_if_absent_has_one_winner(make_dict):
    winners = []
    barrier = threading.Barrier(4)

    def worker(i):
        def run():
            d = make_dict()
            barrier.wait()
            r = d.setdefault_if("token", default_value=plain_value(i), condition=ETAG_IS_THE_SAME,
                                expected_etag=INA)
            if r.value_was_mutated:
                winners.append(plain_value(i))

        return run

    _run_threads([worker(i) for i in range(4)])
    assert len(winners) == 1
    assert make_dict()["token"] == winners[0]


def test_failed_write_racing_a_delete_reports_a_result(make_dict):
    """A key that vanishes while a failed set_item_if reads it gives an INA result, not an error."""
    d, other = make_dict(), make_dict()
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            other["k"] = plain_value(1)
            other.discard("k")

    results = []

    def probe():
        try:
            for _ in range(80):
                results.append(d.set_item_if("k", value=plain_value(2), condition=ETAG_IS_THE_SAME,
                                             expected_etag="stale", retrieve_value=ALWAYS_RETRIEVE))
        finally:
            stop.set()

    _run_threads([churn, probe])
    assert len(results) == 80
    for r in results:
        assert not r.condition_was_satisfied
        if r.actual_etag is INA:
            assert r.resulting_etag is INA and r.new_value is INA
        else:
            assert r.new_value == plain_value(1) and r.resulting_etag == r.actual_etag
    assert "k" not in d or d["k"] == plain_value(1)


def test_listing_while_others_write_and_delete(make_dict):
    """Readers walking the store while a writer churns see consistent items and never crash."""
    writer, reader = make_dict(), make_dict()
    stop = threading.Event()

    def churn():
        try:
            for _ in range(15):
                for i in range(5):
                    writer[("g", f"k{i}")] = plain_value(i)
                for i in range(5):
                    writer.discard(("g", f"k{i}"))
        finally:
            stop.set()

    def read():
        while not stop.is_set():
            for key, value in reader.items():
                assert value == plain_value(int(key[-1][1:]))
            assert 0 <= len(reader) <= 5
            for key in reader.keys():
                assert key[0] == "g"
            reader.random_key()

    _run_threads([churn, read, read])
    assert len(reader) == 0


_WORKER = textwrap.dedent("""
    import pickle, sys
    import persidict
    from tests.contract.contract_helpers import next_value, plain_value, use_values_of
    cls_name, params, n = pickle.loads(bytes.fromhex(sys.argv[1]))
    d = getattr(persidict, cls_name)(**params)
    use_values_of(d.serialization_format)
    for _ in range(n):
        d.transform_item("counter", n_retries=None,
                         transformer=lambda v: plain_value(1) if v is persidict.ITEM_NOT_AVAILABLE else next_value(v))
""")


@pytest.mark.processes
@pytest.mark.store_kinds_with("cross_process")
def test_processes_incrementing_lose_no_update(make_dict):
    d = make_dict()
    n_procs, n_increments = 3, 8
    arg = pickle.dumps((type(d).__name__, d.get_params(), n_increments)).hex()
    repo = pathlib.Path(__file__).resolve().parents[2]  # the workers import the value families from tests/
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, arg], cwd=repo) for _ in range(n_procs)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    assert d["counter"] == plain_value(n_procs * n_increments)
