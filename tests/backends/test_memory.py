"""LocalDict and FsspecDict on ``memory://``: isolation, sharing, counters, threads (docs/stores.md#localdict).

No timings are asserted here: the memory store's speed is a benchmark's business.
"""

from __future__ import annotations

import pickle
import sys
import threading
import time
import uuid

import fsspec
import pytest

from persidict import (
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    FsspecDict,
    LocalDict,
)

INA = ITEM_NOT_AVAILABLE


@pytest.fixture
def memory_url():
    """A fresh path on fsspec's global memory store, removed afterwards."""
    url = f"memory://persidict-backend-tests/{uuid.uuid4().hex}"
    yield url
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


@pytest.fixture
def fast_thread_switching():
    """Switch threads every microsecond, so that they interleave inside operations."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def _run_threads(targets, timeout=60):
    errors = []

    def guarded(target):
        try:
            target()
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    if errors:
        raise errors[0]


# --- isolation and sharing ------------------------------------------------------------


def test_two_local_dicts_never_share_data():
    a, b = LocalDict(), LocalDict()
    a["k"] = 1
    a["sub", "k"] = 2
    assert "k" not in b
    assert len(b) == 0
    assert list(b.keys()) == []
    b["k"] = "b's"
    assert a["k"] == 1
    assert a != b
    assert a.backend is not b.backend


def test_local_dict_on_the_same_backend_shares_data():
    a = LocalDict()
    b = LocalDict(backend=a.backend)
    a["k"] = 1
    assert b["k"] == 1
    b["k"] = 2
    assert a["k"] == 2
    del a["k"]
    assert "k" not in b
    assert a == b  # same type, same params: equal without reading
    assert b.get_params()["backend"] is a.backend


def test_copy_shares_the_backend():
    import copy

    a = LocalDict()
    a["k"] = 1
    c = copy.copy(a)
    assert c is not a
    assert c.backend is a.backend
    c["k2"] = 2
    assert a["k2"] == 2


def test_local_dict_rejects_a_foreign_backend():
    with pytest.raises(TypeError):
        LocalDict(backend={"not": "a backend"})


def test_formats_are_separate_namespaces_on_one_backend():
    p = LocalDict()
    j = LocalDict(backend=p.backend, serialization_format="json")
    p["k"] = "pickled"
    j["k"] = "jsoned"
    assert p["k"] == "pickled"
    assert j["k"] == "jsoned"
    assert len(p) == 1 and len(j) == 1
    p.clear()
    assert j["k"] == "jsoned"
    assert len(p) == 0


def test_subdicts_see_writes_both_ways():
    root = LocalDict()
    sub = root.get_subdict("s")
    deeper = sub.get_subdict(("t", "u"))
    root["s", "a"] = 1
    assert sub["a"] == 1
    sub["b"] = 2
    assert root["s", "b"] == 2
    deeper["c"] = 3
    assert root["s", "t", "u", "c"] == 3
    assert sub["t", "u", "c"] == 3
    del root["s", "a"]
    assert "a" not in sub
    sub.discard("b")
    assert ("s", "b") not in root
    assert len(root) == 1
    assert root.get_subdict(()) == root


# --- ETags --------------------------------------------------------------------------------


def test_etags_are_counter_strings_shared_across_subdicts():
    root = LocalDict()
    sub = root.get_subdict("s")
    other = LocalDict(backend=root.backend)
    seen = []
    for i in range(5):
        root[f"r{i}"] = i
        seen.append(root.etag(f"r{i}"))
        sub[f"s{i}"] = i
        seen.append(sub.etag(f"s{i}"))
        other["r0"] = i  # overwrites create new versions too
        seen.append(other.etag("r0"))
    assert all(isinstance(e, str) and e.isdigit() for e in seen)
    numbers = [int(e) for e in seen]
    assert numbers == sorted(numbers)
    assert len(set(seen)) == len(seen), "an ETag repeated across subdicts or instances"
    assert sub.etag("s0") == root.etag(("s", "s0"))


def test_etag_is_stable_and_keep_current_keeps_it():
    from persidict import KEEP_CURRENT

    d = LocalDict()
    d["k"] = 1
    e = d.etag("k")
    ts = d.timestamp("k")
    assert d.etag("k") == e
    d["k"] = KEEP_CURRENT
    assert d.etag("k") == e
    assert d.timestamp("k") == ts
    d["k"] = 1
    assert d.etag("k") != e


def test_separate_local_dicts_have_their_own_counters():
    a, b = LocalDict(), LocalDict()
    a["k"] = 1
    b["k"] = 1
    # Private stores: each counter is its own; values do not leak either way.
    assert a.etag("k").isdigit() and b.etag("k").isdigit()
    b["k"] = 2
    assert a["k"] == 1


# --- values are copies --------------------------------------------------------------------


def test_values_are_copies():
    d = LocalDict()
    original = [1, [2, 3]]
    d["k"] = original
    original.append("mutated after the write")
    got = d["k"]
    assert got == [1, [2, 3]]
    got[1].append("mutated after the read")
    assert d["k"] == [1, [2, 3]]
    assert d["k"] is not d["k"]
    default = {"x": []}
    assert d.setdefault("new", default) is default
    default["x"].append(1)
    assert d["new"] == {"x": []}
    for value in d.values():
        if isinstance(value, list):
            value.clear()
    assert d["k"] == [1, [2, 3]]


# --- threads ---------------------------------------------------------------------------------


def test_threads_incrementing_lose_no_update(monkeypatch, fast_thread_switching):
    real_sleep = time.sleep
    # Conflicts back off up to 1 s each (docs/concurrency.md#transform-item); keep them short, not absent.
    monkeypatch.setattr(time, "sleep", lambda s: real_sleep(min(s, 0.001)))
    d = LocalDict()
    n_threads, n_each = 8, 200
    barrier = threading.Barrier(n_threads)

    def worker():
        mine = LocalDict(backend=d.backend)
        barrier.wait()
        for _ in range(n_each):
            mine.transform_item("n", transformer=lambda v: 1 if v is INA else v + 1, n_retries=None)

    _run_threads([worker] * n_threads)
    assert d["n"] == n_threads * n_each


def _insert_if_absent_race(n_threads):
    d = LocalDict()
    barrier = threading.Barrier(n_threads)
    results = {}

    def worker(i):
        def run():
            barrier.wait()
            results[i] = d.setdefault_if("token", default_value=i, condition=ETAG_IS_THE_SAME, expected_etag=INA)

        return run

    _run_threads([worker(i) for i in range(n_threads)])
    return d, results


def test_threads_racing_insert_if_absent_have_one_winner(fast_thread_switching):
    for round_no in range(5):
        d, results = _insert_if_absent_race(16)
        assert len(results) == 16
        winners = [i for i, r in results.items() if r.condition_was_satisfied]
        assert len(winners) == 1, f"round {round_no}: winners {winners}"
        assert sum(r.value_was_mutated for r in results.values()) == 1
        assert d["token"] == winners[0]


def test_threads_mixing_writes_deletes_and_listing_stay_consistent(fast_thread_switching):
    """Listing while other threads write and delete yields no torn or phantom entries, and sees what exists.

    Every assertion holds under any schedule. Each value names its own key, so a torn entry (a key paired
    with another key's value, or a half-written value) shows; every listed key must be one the writers
    use; items that exist for the whole test must be in every listing; a key's value never goes back in
    time from one listing to the next. Writers pause at checkpoints until the lister has listed their
    latest checkpoint item (a handshake on a Condition, not a timer), so the lister provably lists while
    writes and deletes are still going on; its last listing starts after every writer is done and must
    match the final content exactly.
    """
    d = LocalDict()
    prefixes = ("a", "b", "c")
    n_steps, n_slots, checkpoint_every = 300, 7, 50

    def value_for(key, i):
        return [*key, i]

    # Items that exist from before the first listing to after the last one.
    pinned = {(p, "pinned"): value_for((p, "pinned"), -1) for p in prefixes}
    d.update(pinned)
    universe = (set(pinned) | {(p, "checkpoint") for p in prefixes}
                | {(p, str(s)) for p in prefixes for s in range(n_slots)})

    handshake = threading.Condition()
    acknowledged = dict.fromkeys(prefixes, -1)  # the latest checkpoint the lister has listed, per writer
    writers_done = threading.Event()
    lister_failed = threading.Event()
    problems = []
    n_listings = {"during_writes": 0}
    final_listing = {}

    def writer(prefix):
        def run():
            for i in range(n_steps):
                slot = (prefix, str(i % n_slots))
                d[slot] = value_for(slot, i)
                if i % 3 == 0:
                    d.discard((prefix, str((i + 1) % n_slots)))
                if i % checkpoint_every == checkpoint_every - 1:
                    d[prefix, "checkpoint"] = value_for((prefix, "checkpoint"), i)
                    with handshake:
                        handshake.wait_for(lambda step=i: acknowledged[prefix] >= step or lister_failed.is_set(),
                                           timeout=120)  # only a guard against a hang: never reached normally
                    assert acknowledged[prefix] >= i or lister_failed.is_set(), "the lister hung"

        return run

    def lister():
        last_seen = {}  # key -> the newest step this thread has seen for it
        try:
            while True:
                last_round = writers_done.is_set()  # read before listing: the last listing starts after the writes
                listing = [(tuple(k), v) for k, v in d.items()]
                keys = [k for k, _ in listing]
                assert len(keys) == len(set(keys)), f"a key listed twice: {sorted(keys)}"
                for key, value in listing:
                    assert key in universe, f"phantom key {key}"
                    assert isinstance(value, list) and len(value) == 3 and tuple(value[:2]) == key, \
                        f"torn entry {key}: {value!r}"
                    assert isinstance(value[2], int), f"torn entry {key}: {value!r}"
                    assert value[2] >= last_seen.get(key, -1), \
                        f"{key} went back in time: {value[2]} after {last_seen[key]}"
                    last_seen[key] = value[2]
                assert set(pinned) <= set(keys), f"an item that always exists is missing: {sorted(keys)}"
                if not last_round:
                    n_listings["during_writes"] += 1
                with handshake:
                    observed = dict(listing)
                    for p in prefixes:
                        step = observed.get((p, "checkpoint"), [p, "checkpoint", -1])[2]
                        acknowledged[p] = max(acknowledged[p], step)
                    handshake.notify_all()
                if last_round:
                    final_listing.update(listing)
                    return
        except BaseException as exc:  # reported below
            problems.append(exc)
            lister_failed.set()
            with handshake:
                handshake.notify_all()

    listing = threading.Thread(target=lister)
    listing.start()
    try:
        _run_threads([writer(p) for p in prefixes])
    finally:
        writers_done.set()
        listing.join(timeout=120)
    assert not listing.is_alive()
    assert problems == []
    # A writer's checkpoints were each acknowledged by another listing, made while that writer was not done.
    assert n_listings["during_writes"] >= n_steps // checkpoint_every
    last_checkpoint = max(i for i in range(n_steps) if i % checkpoint_every == checkpoint_every - 1)
    assert acknowledged == dict.fromkeys(prefixes, last_checkpoint)
    final = {tuple(k): v for k, v in d.items()}
    assert final_listing == final
    assert set(pinned) <= set(final)
    assert len(d) == len(final)


# --- the fsspec filesystem underneath -----------------------------------------------------------


def test_fsspec_filesystem_stays_usable():
    d = LocalDict()
    d["a", "b"] = {"v": [1, 2]}
    path = d.key_to_path(("a", "b"))
    assert d.fs.cat_file(path) == pickle.dumps({"v": [1, 2]}, protocol=pickle.HIGHEST_PROTOCOL)
    listed = d.fs.ls(path.rsplit("/", 1)[0], detail=False)
    assert any(p.rstrip("/").endswith("b.pkl") for p in listed)
    assert d.fs.isfile(path)


def test_value_written_through_fsspec_is_readable_and_versioned():
    d = LocalDict()
    d["k"] = "via dict"
    first = d.etag("k")
    path = d.key_to_path("k")
    d.fs.pipe_file(path, pickle.dumps(["via", "fsspec"]))
    assert d["k"] == ["via", "fsspec"]
    second = d.etag("k")
    assert isinstance(second, str) and second
    assert second != first
    assert d.etag("k") == second  # stable once given
    r = d.get_with_etag("k")
    assert (r.new_value, r.actual_etag) == (["via", "fsspec"], second)
    new_path = d.key_to_path("fresh")
    d.fs.pipe_file(new_path, pickle.dumps(7))
    assert "fresh" in d
    assert d["fresh"] == 7
    assert d.etag("fresh") not in {first, second}
    assert isinstance(d.timestamp("fresh"), float)
    # A CAS against the version written outside works.
    w = d.set_item_if("k", value="cas", condition=ETAG_IS_THE_SAME, expected_etag=second)
    assert w.condition_was_satisfied
    assert d["k"] == "cas"


def test_two_fsspec_dicts_on_one_memory_url_share_data(memory_url):
    a = FsspecDict(memory_url)
    b = FsspecDict(memory_url)
    a["k"] = 1
    assert b["k"] == 1
    b["k"] = 2
    assert a["k"] == 2
    assert a.etag("k") == b.etag("k")
    r = b.set_item_if("k", value=3, condition=ETAG_IS_THE_SAME, expected_etag=a.etag("k"))
    assert r.condition_was_satisfied
    assert a["k"] == 3
    assert a == b


def test_local_dict_is_isolated_from_the_global_memory_store(memory_url):
    local = LocalDict()
    local["isolation-probe"] = "local"
    global_root = FsspecDict("memory://")
    assert "isolation-probe" not in global_root
    glob = FsspecDict(memory_url)
    glob["k"] = "global"
    assert "k" not in local
    assert local.fs is not glob.fs
    assert local.fs.store is not glob.fs.store


def test_memory_url_subdict_and_prefix_dict_share_data(memory_url):
    root = FsspecDict(memory_url)
    root["p", "k"] = "v"
    assert FsspecDict(memory_url + "/p")["k"] == "v"
    sub = root.get_subdict("p")
    sub["j"] = 1
    assert root["p", "j"] == 1


def test_threads_incrementing_on_a_memory_url_lose_no_update(memory_url, monkeypatch, fast_thread_switching):
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda s: real_sleep(min(s, 0.001)))
    n_threads, n_each = 4, 100

    def worker():
        mine = FsspecDict(memory_url)
        for _ in range(n_each):
            mine.transform_item("n", transformer=lambda v: 1 if v is INA else v + 1, n_retries=None)

    _run_threads([worker] * n_threads)
    assert FsspecDict(memory_url)["n"] == n_threads * n_each


# --- constructor parameters (docs/stores.md#localdict) ----------------------------------------------


PRUNE_INTERVALS = [(128, 128), ("32", 32), (0, None), (-5, None), (None, None), ("abc", 64)]


def test_prune_interval_is_accepted_normalized_and_reported():
    assert LocalDict().get_params()["prune_interval"] == 64
    for given, reported in PRUNE_INTERVALS:
        d = LocalDict(prune_interval=given)
        assert d.get_params()["prune_interval"] == reported, given
        again = LocalDict(**d.get_params())
        assert again.get_params() == d.get_params()


def test_get_params_is_sorted_and_rebuilds():
    d = LocalDict(serialization_format="json", base_class_for_values=dict)
    params = d.get_params()
    assert list(params) == sorted(params)
    assert {"append_only", "backend", "base_class_for_values", "serialization_format"} <= set(params)
    d["k"] = {"a": 1}
    assert LocalDict(**params)["k"] == {"a": 1}
