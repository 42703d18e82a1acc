"""FileDirDict under real concurrent processes (atomic on local folders: docs/concurrency.md#atomicity-local).

Each worker is a separate Python process (``_race_worker.py``) on the same
folder. Workers report ``ready`` after opening the store; the parent then
releases them all at once through their stdin, so the operations really race.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from persidict import FileDirDict

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_race_worker.py")
TIMEOUT = 60  # seconds; a hung worker fails the test instead of blocking the suite

pytestmark = pytest.mark.processes


class Workers:
    """A group of worker processes released together, round by round."""

    def __init__(self, role: str, args_per_worker: list[dict]) -> None:
        env = dict(os.environ)
        # The worker must import the package under test, like the tests do.
        repo_root = os.path.dirname(os.path.dirname(os.path.dirname(WORKER)))
        env["PYTHONPATH"] = repo_root + os.pathsep + env.get("PYTHONPATH", "")
        self.procs = [
            subprocess.Popen(
                [sys.executable, WORKER, role, json.dumps(args)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for args in args_per_worker
        ]
        try:
            for proc in self.procs:
                assert self._read(proc) == "ready"
        except BaseException:
            self.kill()
            raise

    def _read(self, proc: subprocess.Popen) -> object:
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=TIMEOUT)
            raise AssertionError(f"worker exited early with {proc.returncode}: {proc.stderr.read()}")
        return json.loads(line)

    def release(self) -> list:
        """Let every worker run one round; return their results in worker order."""
        for proc in self.procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        return [self._read(proc) for proc in self.procs]

    def finish(self) -> None:
        for proc in self.procs:
            proc.stdin.close()
        for proc in self.procs:
            try:
                rc = proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
            assert rc == 0, proc.stderr.read()

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _run(role: str, args_per_worker: list[dict], rounds: int = 1) -> list[list]:
    workers = Workers(role, args_per_worker)
    try:
        results = [workers.release() for _ in range(rounds)]
        workers.finish()
        return results
    finally:
        workers.kill()


def test_transform_item_increments_lose_no_update(tmp_path):
    base = str(tmp_path / "store")
    n_workers, n_each = 4, 200
    args = {"base_dir": base, "key": ("counters", "hits"), "n": n_each, "short_backoff": True}
    [results] = _run("increment", [args] * n_workers)
    assert [r["done"] for r in results] == [n_each] * n_workers
    d = FileDirDict(base_dir=base)
    assert d["counters", "hits"] == n_workers * n_each
    assert len(d) == 1
    # Each increment calls the transformer at least once; conflicts call it again.
    assert sum(r["transformer_calls"] for r in results) >= n_workers * n_each


def test_insert_if_absent_has_exactly_one_winner_per_key(tmp_path):
    base = str(tmp_path / "store")
    n_workers = 8
    keys = [f"token{i}" for i in range(5)]
    args = [{"base_dir": base, "keys": keys, "worker_id": w} for w in range(n_workers)]
    rounds = _run("insert_if_absent", args, rounds=len(keys))
    d = FileDirDict(base_dir=base)
    for key, results in zip(keys, rounds, strict=True):
        assert all(r["key"] == key for r in results)
        winners = [w for w, r in enumerate(results) if r["satisfied"]]
        assert len(winners) == 1, f"{key}: winners {winners}"
        assert results[winners[0]]["mutated"] is True
        assert sum(r["mutated"] for r in results) == 1
        assert d[key] == winners[0]
    assert len(d) == len(keys)


def test_compare_and_swap_loops_lose_no_update(tmp_path):
    base = str(tmp_path / "store")
    FileDirDict(base_dir=base, fsync=False)["n"] = 0
    n_workers, n_each = 4, 100
    [results] = _run("cas", [{"base_dir": base, "key": "n", "n": n_each}] * n_workers)
    assert sum(r["successes"] for r in results) == n_workers * n_each
    assert FileDirDict(base_dir=base)["n"] == n_workers * n_each


def test_readers_never_see_a_torn_value(tmp_path):
    base = str(tmp_path / "store")
    sizes = {"size_a": 3 * 1024 * 1024, "size_b": 1024 * 1024 + 17}
    d = FileDirDict(base_dir=base, fsync=False)
    d["big"] = b"A" * sizes["size_a"]
    common = {"base_dir": base, "key": "big", "seconds": 3.0, **sizes}
    [results] = _run_writer_and_readers(common, n_readers=1)
    writer, readers = results[0], results[1:]
    written = dict((etag, which) for etag, which in writer["written"])
    assert len(writer["written"]) >= 10, "the writer must really rewrite the value"
    assert len(written) == len(writer["written"]), "every version must have its own ETag"
    for reader in readers:
        assert reader["reads"] >= 20
        assert reader["bad"] == 0
        for etag, which in reader["pairs"]:
            if etag in written:  # the initial version was written before the race
                assert written[etag] == which, "value and ETag belong to different versions"
        assert any(etag in written for etag, _ in reader["pairs"])


def _run_writer_and_readers(common: dict, n_readers: int) -> list[list]:
    workers: list[Workers] = []
    try:
        workers.append(Workers("writer", [common]))
        workers.extend(Workers("reader", [common]) for _ in range(n_readers))
        for group in workers:
            for proc in group.procs:
                proc.stdin.write("go\n")
                proc.stdin.flush()
        results = [group._read(group.procs[0]) for group in workers]
        for group in workers:
            group.finish()
        return [results]
    finally:
        for group in workers:
            group.kill()
