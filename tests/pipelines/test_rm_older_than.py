"""``persidict rm --older-than DURATION URL``: prune a store by write time from the command line."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from persidict import FileDirDict
from persidict.pipelines.durations import parse_duration

from .test_cli import run


def test_durations_read_as_people_write_them() -> None:
    assert [parse_duration(text) for text in ("90s", "15m", "12h", "7d", "2w", "30", "1.5h")] == [
        90, 900, 43200, 604800, 1209600, 30, 5400
    ]
    for bad in ("7 days", "-1d", "d", "", "1y"):
        with pytest.raises(ValueError, match="expected a duration"):
            parse_duration(bad)


def test_rm_older_than_deletes_only_keys_older_than_the_duration(tmp_path: Path) -> None:
    store: FileDirDict[str] = FileDirDict(base_dir=str(tmp_path))
    store["old", "a"], store["old", "b"], store["new"] = "1", "2", "3"
    week_ago = time.time() - 8 * 86400
    for key in (("old", "a"), ("old", "b")):
        os.utime(store.key_to_path(key), (week_ago, week_ago))  # written eight days ago
    result = run("rm", str(tmp_path), "--older-than", "7d")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "removed 2 key(s)\n"
    assert list(store.keys()) == [("new",)]
    result = run("rm", str(tmp_path), "--older-than", "90s", "--json")
    assert json.loads(result.stdout) == {"removed": 0}


def test_rm_takes_a_key_or_a_duration_but_not_both_nor_neither(tmp_path: Path) -> None:
    FileDirDict(base_dir=str(tmp_path))["k"] = 1
    for args in ((), ("k", "--older-than", "1d")):
        result = run("rm", str(tmp_path), *args)
        assert result.returncode == 2 and "KEY or --older-than" in result.stderr
    result = run("rm", str(tmp_path), "--older-than", "seven days")
    assert result.returncode == 2 and "expected a duration" in result.stderr
    assert run("rm", str(tmp_path), "k").returncode == 0 and len(FileDirDict(base_dir=str(tmp_path))) == 0
