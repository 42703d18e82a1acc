"""The per-machine cache of normalized code: a new process parses nothing it has seen, and keys never change.

Each run is a fresh interpreter (what a restarted kernel or a worker is) that
loads a module from a file and prints the fingerprint of its memoized function,
the memoize key of a call, and how many times ``ast.parse`` ran while computing
them (counted by wrapping the real ``ast.parse``: counted, never timed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from persidict.pipelines.memoize import code_cache

REPO = Path(__file__).resolve().parents[2]
WAIT = 120

MODULE = '''
SCALE = 3


def helper(x):
    # scales its argument
    return x * SCALE


def body(x):
    """The memoized step."""
    return helper(x) + 1
'''

RUN = '''
import ast, importlib.util, sys

real_parse, parses = ast.parse, []


def counting_parse(*args, **kwargs):
    parses.append(args[0])
    return real_parse(*args, **kwargs)


ast.parse = counting_parse
from persidict import LocalDict
from persidict.pipelines.memoize import memoize
from persidict.pipelines.memoize.code import fingerprint

spec = importlib.util.spec_from_file_location("subject", sys.argv[1])
module = sys.modules["subject"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
parses.clear()
function = getattr(module, sys.argv[2])
digest = fingerprint(function).digest
print(digest, memoize(LocalDict())(function).key(5)[3], len(parses))
'''


def run(module: Path, cache: Path | str | None, seed: str = "0", function: str = "body") -> tuple[str, str, int]:
    """(fingerprint, code version of the key, number of parses) of ``module.<function>`` in a new interpreter."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "PYTHONHASHSEED": seed, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PERSIDICT_CACHE_DIR", None)
    if cache is not None:
        env["PERSIDICT_CACHE_DIR"] = str(cache)
    done = subprocess.run([sys.executable, "-c", RUN, str(module), function], env=env, capture_output=True, text=True,
                          timeout=WAIT, check=True)
    assert done.stderr == ""
    digest, version, parses = done.stdout.split()
    return digest, version, int(parses)


def write_module(path: Path, text: str) -> None:
    """Write a module dated a day ago: a file changed after a process started is checked against its
    running code rather than read from the cache, and process start times have a resolution of seconds."""
    path.write_text(text)
    a_day_ago = time.time() - 86400
    os.utime(path, (a_day_ago, a_day_ago))


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "code").glob("*/*.json"))


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "subject.py"
    write_module(path, MODULE)
    return path


@pytest.mark.processes
def test_a_new_process_reads_the_entries_and_parses_nothing(module: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = run(module, cache)
    assert first[2] == 2  # body and helper, each its own lines only
    assert len(entries(cache)) == 2
    assert (cache / "code").stat().st_mode & 0o777 == 0o700  # private to its user
    again = run(module, cache, seed="1")
    assert again == (first[0], first[1], 0)


CLASS_MODULE = MODULE + """

def unrelated(x):
    return x


class Offset:
    def value(self):
        return SCALE


shift = lambda x: x + 1  # noqa: E731


def with_class(x):
    return shift(body(x)) + Offset().value()
"""


@pytest.mark.processes
def test_a_class_or_a_lambda_is_remembered_by_the_text_of_its_file(tmp_path: Path) -> None:
    module = tmp_path / "with_class.py"
    write_module(module, CLASS_MODULE)
    cache = tmp_path / "cache"
    first = run(module, cache, function="with_class")
    assert first[2] == 4  # with_class, body and helper: their own lines; Offset and shift: their file, once
    assert run(module, cache, function="with_class") == (first[0], first[1], 0)
    write_module(module, CLASS_MODULE.replace("    return x\n", "    return x + 1\n"))  # unrelated code edited
    assert run(module, cache, function="with_class") == (first[0], first[1], 1)  # their file, parsed again


@pytest.mark.processes
def test_keys_are_identical_with_and_without_the_cache_under_any_hash_seed(module: Path, tmp_path: Path) -> None:
    without = run(module, "", seed="11")  # PERSIDICT_CACHE_DIR="" disables it
    cold = run(module, tmp_path / "cache", seed="22")
    warm = run(module, tmp_path / "cache", seed="33")
    assert without[:2] == cold[:2] == warm[:2]
    assert (without[2], warm[2]) == (2, 0)


@pytest.mark.processes
@pytest.mark.parametrize(("edit", "same_key"), [
    (lambda text: text.replace("return helper(x) + 1", "return helper(x) + 2"), False),
    (lambda text: text.replace("return x * SCALE", "return SCALE * x * 1"), False),
    (lambda text: text.replace("# scales its argument", "# multiplies"), True),
], ids=["body", "helper", "comment"])
def test_an_edited_function_gets_a_new_entry_of_its_own(module: Path, tmp_path: Path, edit, same_key: bool) -> None:
    cache = tmp_path / "cache"
    before = run(module, cache)
    old = entries(cache)
    write_module(module, edit(module.read_text()))
    after = run(module, cache)
    assert after[2] == 1  # only the edited function is parsed
    assert len(entries(cache)) == len(old) + 1 and set(old) < set(entries(cache))
    assert (after[:2] == before[:2]) is same_key
    assert run(module, cache)[2] == 0


def _garbage(path: Path, others: list[Path]) -> None:
    path.write_bytes(b"\x00\xff not json")


def _empty(path: Path, others: list[Path]) -> None:
    path.write_bytes(b"")


def _truncated(path: Path, others: list[Path]) -> None:
    path.write_bytes(path.read_bytes()[:-10])


def _short_digest(path: Path, others: list[Path]) -> None:
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "digest": record["digest"][:10]}))


def _another_entry(path: Path, others: list[Path]) -> None:
    """A well-formed record filed under another entry's name (a copy mistake) does not count."""
    path.write_text(json.dumps({**json.loads(path.read_text()), "entry": "0" * 64}))


def _a_folder(path: Path, others: list[Path]) -> None:
    """Neither readable nor replaceable: the run computes, and its write fails silently."""
    path.unlink()
    path.mkdir()


def _missing(path: Path, others: list[Path]) -> None:
    path.unlink()


@pytest.mark.processes
@pytest.mark.parametrize("damage", [_garbage, _empty, _truncated, _short_digest, _another_entry, _a_folder, _missing])
def test_a_damaged_or_missing_entry_is_computed_again(module: Path, tmp_path: Path, damage) -> None:
    cache = tmp_path / "cache"
    cold = run(module, cache)
    paths = entries(cache)
    for path in paths:
        damage(path, paths)
    again = run(module, cache)
    assert again == (cold[0], cold[1], 2)
    if damage is not _a_folder:  # rewritten whole: the next process reads them again
        assert run(module, cache)[2] == 0
        assert not list((cache / "code").glob("*/.tmp-*"))


@pytest.mark.processes
def test_a_cache_folder_that_cannot_be_written_is_skipped(module: Path, tmp_path: Path) -> None:
    """Root can write anywhere, so the folder is made impossible: its parent is a file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    reference = run(module, "")
    assert run(module, blocker / "cache") == reference
    assert blocker.read_text() == "not a folder"


def test_where_the_cache_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("PERSIDICT_CACHE_DIR")
    assert code_cache.cache_folder() == str(tmp_path / "home" / ".cache" / "persidict" / "code")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    assert code_cache.cache_folder() == str(tmp_path / "home" / ".cache" / "persidict" / "code")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert code_cache.cache_folder() == str(tmp_path / "xdg" / "persidict" / "code")
    monkeypatch.setenv("PERSIDICT_CACHE_DIR", str(tmp_path / "mine"))
    assert code_cache.cache_folder() == str(tmp_path / "mine" / "code")
    monkeypatch.setenv("PERSIDICT_CACHE_DIR", "")
    assert code_cache.cache_folder() is None


def test_an_entry_depends_on_the_text_the_name_the_variant_and_the_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    name = code_cache.entry_name("memoize", "f", "def f():\n    return 1\n")
    assert name == code_cache.entry_name("memoize", "f", "def f():\n    return 1\n")
    others = [code_cache.entry_name("whole", "f", "def f():\n    return 1\n"),
              code_cache.entry_name("memoize", "g", "def f():\n    return 1\n"),
              code_cache.entry_name("memoize", "f", "def f():\n    return 2\n")]
    monkeypatch.setattr(code_cache, "NORMALIZATION", code_cache.NORMALIZATION + 1)
    others.append(code_cache.entry_name("memoize", "f", "def f():\n    return 1\n"))
    assert len({name, *others}) == 5
