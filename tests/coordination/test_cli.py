"""``persidict check URL`` and ``persidict queue URL``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persidict import FileDirDict
from persidict.coordination import WorkQueue
from persidict.pipelines.cli import main

from ..servers.stripping_s3 import StrippingS3


@pytest.fixture(scope="module")
def stripping_s3() -> Iterator[StrippingS3]:
    with StrippingS3() as server:
        yield server


def _s3_options(server: Any) -> list[str]:
    options = server.storage_options()
    return ["-o", f"endpoint_url={options['endpoint_url']}", "-o", f"key={options['key']}",
            "-o", f"secret={options['secret']}"]


def test_check_passes_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    FileDirDict(base_dir=str(tmp_path))["a"] = 1
    assert main(["check", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["atomic"] is True and report["requests"] == 6
    assert list(FileDirDict(base_dir=str(tmp_path)).keys()) == [("a",)]


def test_check_passes_moto_and_fails_a_server_that_ignores_conditions(
    moto_s3: Any, stripping_s3: StrippingS3, capsys: pytest.CaptureFixture[str]
) -> None:
    honest = f"s3://{moto_s3.new_bucket_name()}/data"
    assert main(["put", honest, "a", "1", *_s3_options(moto_s3)]) == 0
    assert main(["check", honest, *_s3_options(moto_s3)]) == 0
    assert ": atomic:" in capsys.readouterr().out
    lying = f"s3://{stripping_s3.new_bucket_name()}/data"
    assert main(["put", lying, "a", "1", *_s3_options(stripping_s3)]) == 0
    assert main(["check", lying, *_s3_options(stripping_s3)]) == 1
    out = capsys.readouterr().out
    assert "not atomic" in out and "If-None-Match" in out


def test_queue_shows_the_counts_and_follows_them_with_a_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queue = WorkQueue(FileDirDict(base_dir=str(tmp_path)), "jobs", max_attempts=1)
    queue.put_many([1, 2, 3])
    task = queue.claim(60)
    assert task is not None
    assert main(["queue", str(tmp_path), "--name", "jobs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"total": 3, "done": 0, "failed": 0, "running": 1, "pending": 2}
    queue.done(task, "ok")
    calls: list[int] = []

    def fails_first(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise ValueError("the first task run fails")
        return x

    queue.run(fails_first)  # of the two tasks left, the first run fails (max_attempts=1: for good)
    assert main(["queue", str(tmp_path), "--name", "jobs", "--poll", "0.05"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "total 3  done 2  failed 1  running 0  pending 0"
    assert "jobs" in captured.err and "3/3" in captured.err  # the bar, on stderr
