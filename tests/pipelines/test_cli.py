"""The ``persidict`` command line, run end to end as ``python -m persidict ...``, and ``copy_store`` in-process.

The S3 cases run against the session's moto server (``moto_s3``), each in a bucket of its own.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import persidict
from persidict import BackendError, FileDirDict, FsspecDict, LocalDict, PersiDictError
from persidict.pipelines.copy import CopyError, CopyReport, copy_store

from ..servers.moto_s3 import CREDENTIALS

TIMEOUT = 120  # seconds one command may take before the test fails


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m persidict ARGS``, with AWS settings from the environment removed unless ``env`` sets them."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    return subprocess.run([sys.executable, "-m", "persidict", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, env={**clean, **(env or {})}, check=False)


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    """Run a command that must succeed; return its stdout."""
    result = run(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def failed(*args: str) -> str:
    """Run a command that must fail with status 1 and a one-line reason; return its stderr."""
    result = run(*args)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("persidict: ")
    return result.stderr


def s3_options(server: Any) -> list[str]:
    return ["-o", f"endpoint_url={server.url}", "-o", f"key={CREDENTIALS['key']}", "-o",
            f"secret={CREDENTIALS['secret']}"]


def s3_url(server: Any, prefix: str = "store") -> str:
    return f"s3://{server.new_bucket_name()}/{prefix}"


@pytest.fixture
def folder(tmp_path: Path) -> FileDirDict[Any]:
    """A local store with a few values of different types, some under nested keys."""
    store: FileDirDict[Any] = FileDirDict(base_dir=tmp_path / "store", fsync=False)
    store["n"] = 7
    store["greeting"] = "hello"
    store["runs", "r1", "loss"] = 0.25
    store["runs", "r2", "config"] = {"lr": 0.1, "layers": [3, 4]}
    store["Runs", "UPPER"] = (1, 2)  # differs from "runs" only in case: the digest suffixes keep them apart
    return store


# --- the basics ---------------------------------------------------------------------------------
def test_version() -> None:
    assert ok("--version") == f"persidict {persidict.__version__}\n"


@pytest.mark.parametrize("args", [
    [],                                   # no command
    ["nosuch"],                           # unknown command
    ["get", "somewhere"],                 # missing KEY
    ["get", "somewhere", "a//b"],         # an empty key part
    ["get", "somewhere", "a/../b"],       # a reserved key part
    ["ls", "somewhere", "-o", "novalue"],  # an option that is not NAME=VALUE
    ["cp", "a", "b", "--workers", "0"],
    ["gc", "somewhere", "--older-than", "-1"],
])
def test_bad_usage_exits_2(args: list[str], tmp_path: Path) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert not (tmp_path / "somewhere").exists()


# --- ls, get, put, rm -------------------------------------------------------------------------
def test_ls_of_a_folder_is_what_FileDirDict_lists(folder: FileDirDict[Any]) -> None:
    Path(folder.base_dir, "notes (copy).pkl").write_bytes(b"a stray file: no key's")
    expected = sorted("/".join(key) for key in FileDirDict(base_dir=folder.base_dir).keys())
    assert expected == ["Runs/UPPER", "greeting", "n", "runs/r1/loss", "runs/r2/config"]
    assert ok("ls", folder.base_dir).splitlines() == expected
    assert json.loads(ok("ls", folder.base_dir, "--json")) == expected


def test_get_prints_strings_as_they_are_and_other_values_as_repr(folder: FileDirDict[Any]) -> None:
    assert ok("get", folder.base_dir, "n") == "7\n"
    assert ok("get", folder.base_dir, "greeting") == "hello\n"
    assert ok("get", folder.base_dir, "runs/r1/loss") == "0.25\n"
    assert ok("get", folder.base_dir, "Runs/UPPER") == "(1, 2)\n"
    assert ok("get", folder.base_dir, "runs/r2/config") == repr({"lr": 0.1, "layers": [3, 4]}) + "\n"


def test_get_json_parses(folder: FileDirDict[Any]) -> None:
    assert json.loads(ok("get", folder.base_dir, "n", "--json")) == 7
    assert json.loads(ok("get", folder.base_dir, "greeting", "--json")) == "hello"
    assert json.loads(ok("get", folder.base_dir, "runs/r2/config", "--json")) == {"lr": 0.1, "layers": [3, 4]}


def test_get_json_of_a_value_json_cannot_hold_fails_cleanly(folder: FileDirDict[Any]) -> None:
    folder["tags"] = {"a"}
    assert "cannot be written as JSON" in failed("get", folder.base_dir, "tags", "--json")


def test_put_get_rm_round_trip(tmp_path: Path) -> None:
    base = str(tmp_path / "new-store")
    assert ok("put", base, "runs/r1/note", "hello world") == ""
    ok("put", base, "runs/r1/epochs", "7", "--json")
    store: FileDirDict[Any] = FileDirDict(base_dir=base)
    assert store["runs", "r1", "note"] == "hello world"
    assert store["runs", "r1", "epochs"] == 7  # an int, not the string "7"
    assert ok("get", base, "runs/r1/epochs") == "7\n"
    ok("rm", base, "runs/r1/note")
    assert ("runs", "r1", "note") not in store
    assert ok("ls", base).splitlines() == ["runs/r1/epochs"]


def test_missing_keys_and_stores_exit_1(folder: FileDirDict[Any], tmp_path: Path) -> None:
    assert "key not found: runs/r9" in failed("get", folder.base_dir, "runs/r9")
    assert "key not found: nothing" in failed("rm", folder.base_dir, "nothing")
    missing = tmp_path / "no-such-store"
    for command in (["ls"], ["du"], ["gc"], ["get", "", "k"], ["rm", "", "k"]):
        args = [command[0], str(missing), *command[2:]]
        assert "not a folder" in failed(*args)
    assert not missing.exists()  # reading never creates a folder


def test_put_refused_values_exit_1(tmp_path: Path) -> None:
    base = str(tmp_path / "text")
    assert "str" in failed("put", base, "n", "7", "--json", "--format", "txt")
    assert "Expecting value" in failed("put", base, "n", "not json", "--json")


def test_formats(tmp_path: Path) -> None:
    base = str(tmp_path / "mixed")
    ok("put", base, "readme", "# Title\n", "--format", "txt")  # a text format: base_class_for_values=str
    ok("put", base, "point", "[1, 2]", "--json", "--format", "json")
    ok("put", base, "point", "pickled")
    assert FileDirDict(base_dir=base, serialization_format="txt", base_class_for_values=str)["readme"] == "# Title\n"
    assert FileDirDict(base_dir=base, serialization_format="json")["point"] == [1, 2]
    assert ok("ls", base, "--format", "txt") == "readme\n"
    assert ok("ls", base) == "point\n"
    assert ok("get", base, "readme", "--format", "txt") == "# Title\n"  # no newline added to one that ends a line
    assert ok("get", base, "point", "--format", "json") == "[1, 2]\n"


def test_file_urls_open_as_FsspecDict(folder: FileDirDict[Any], tmp_path: Path) -> None:
    # A file:// URL means what FsspecDict(url) means; a folder written with digest suffixes says so in its
    # layout record, so the URL shows the same keys as the folder's path (core/layout.py).
    url = Path(folder.base_dir).as_uri()
    as_fsspec = sorted("/".join(key) for key in FsspecDict(url))
    assert ok("ls", url).splitlines() == as_fsspec
    assert "n" in as_fsspec and not any(key.startswith("n_") for key in as_fsspec)
    assert ok("ls", url) == ok("ls", folder.base_dir) == ok("ls", url, "--digest-len", "4")
    plain = tmp_path / "plain"
    ok("put", plain.as_uri(), "a/b", "x")
    assert (plain / "a" / "b.pkl").is_file()
    assert FsspecDict(str(plain))["a", "b"] == "x"


def test_output_to_a_closed_pipe_stops_quietly(folder: FileDirDict[Any]) -> None:
    process = subprocess.Popen([sys.executable, "-m", "persidict", "ls", folder.base_dir],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # closed before the command writes: `persidict ls ... | head -0`
    assert process.wait(timeout=TIMEOUT) == 1
    assert process.stderr.read() == b""
    process.stderr.close()


# --- du and gc ----------------------------------------------------------------------------------
def test_du_counts_keys_bytes_and_times(folder: FileDirDict[Any]) -> None:
    Path(folder.base_dir, "notes.txt").write_bytes(b"x" * 1000)  # not a value: not counted
    keys = list(folder.keys())
    expected_bytes = sum(os.path.getsize(folder.key_to_path(key)) for key in keys)
    stamps = [folder.timestamp(key) for key in keys]
    usage = json.loads(ok("du", folder.base_dir, "--json"))
    assert usage == {"keys": 5, "bytes": expected_bytes, "oldest": min(stamps), "newest": max(stamps)}
    lines = ok("du", folder.base_dir).splitlines()
    assert lines[:2] == ["keys    5", f"bytes   {expected_bytes}"]
    assert lines[2].startswith("oldest  20") and lines[3].startswith("newest  20")


def test_du_of_an_empty_store(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert json.loads(ok("du", str(tmp_path / "empty"), "--json")) == {
        "keys": 0, "bytes": 0, "oldest": None, "newest": None}


def test_gc_removes_only_old_temporary_files(folder: FileDirDict[Any]) -> None:
    old = Path(folder.base_dir, "runs_" + "x", ".__tmp__" + "0123456789abcdef")  # in a subfolder too
    old.parent.mkdir()
    old.write_bytes(b"left by a killed writer")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    fresh = Path(folder.base_dir, ".__tmp__" + "fedcba9876543210")
    fresh.write_bytes(b"maybe a write in progress")
    assert json.loads(ok("gc", folder.base_dir, "--older-than", "3600", "--json")) == {"removed": 1}
    assert not old.exists() and fresh.exists()
    assert ok("gc", folder.base_dir, "--older-than", "0") == "removed 1 temporary file(s)\n"
    assert not fresh.exists()
    assert len(FileDirDict(base_dir=folder.base_dir)) == 5  # the values stay


# --- cp -----------------------------------------------------------------------------------------
def test_cp_from_a_folder_to_s3_with_progress(folder: FileDirDict[Any], moto_s3: Any) -> None:
    url = s3_url(moto_s3)
    result = run("cp", folder.base_dir, url, *s3_options(moto_s3), "--progress")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "copied 5, skipped 0, failed 0\n"
    assert "5/5" in result.stderr  # the progress bar: done/total
    copy: FsspecDict[Any] = FsspecDict(url, storage_options=moto_s3.storage_options())
    assert values_of(copy) == values_of(folder)
    assert ok("ls", url, *s3_options(moto_s3)) == ok("ls", folder.base_dir)
    assert ok("get", url, "n", *s3_options(moto_s3)) == "7\n"
    usage = json.loads(ok("du", url, *s3_options(moto_s3), "--json"))
    assert (usage["keys"], usage["bytes"]) == (5, sum(copy.fs.size(copy.key_to_path(key)) for key in copy))


def test_s3_endpoint_and_credentials_from_the_environment(moto_s3: Any) -> None:
    url = s3_url(moto_s3)
    FsspecDict(url, storage_options=moto_s3.storage_options())["a", "b"] = 1
    env = {"AWS_ENDPOINT_URL": moto_s3.url, "AWS_ACCESS_KEY_ID": CREDENTIALS["key"],
           "AWS_SECRET_ACCESS_KEY": CREDENTIALS["secret"]}
    assert ok("ls", url, env=env) == "a/b\n"


def test_an_unreachable_server_exits_1_quickly() -> None:
    message = failed("ls", "s3://bucket/prefix", "-o", "endpoint_url=http://127.0.0.1:9", "-o", "key=k",
                     "-o", "secret=s")
    assert "could not connect" in message.lower()


def test_cp_interrupted_with_ctrl_c_resumes(folder: FileDirDict[Any], moto_s3: Any) -> None:
    for i in range(35):
        folder["many", f"k{i:02}"] = i
    url = s3_url(moto_s3)
    dst: FsspecDict[Any] = FsspecDict(url, storage_options=moto_s3.storage_options(), create_root=True)
    with moto_s3.latency(0.2):  # about 0.2 s a value, one at a time: 8 s for all 40
        process = subprocess.Popen([sys.executable, "-m", "persidict", "cp", folder.base_dir, url,
                                    *s3_options(moto_s3), "--workers", "1", "--no-progress"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while len(dst) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130, stderr
    assert stderr == "persidict: interrupted\n" and stdout == ""
    done = len(dst)
    assert 3 <= done < 40
    report = json.loads(ok("cp", folder.base_dir, url, *s3_options(moto_s3), "--json"))
    assert report == {"copied": 40 - done, "skipped": done, "failed": 0, "failures": {}}
    assert values_of(dst) == values_of(folder)


def test_cp_resumes_where_it_stopped(folder: FileDirDict[Any], tmp_path: Path) -> None:
    target = str(tmp_path / "copy")
    # An interrupted copy: the "runs" part got there, and someone changed one of those values since.
    first = json.loads(ok("cp", str(Path(folder.base_dir)), target, "--no-progress", "--json"))
    assert first == {"copied": 5, "skipped": 0, "failed": 0, "failures": {}}
    dst: FileDirDict[Any] = FileDirDict(base_dir=target)
    for key in ["n", "greeting", ("Runs", "UPPER")]:
        del dst[key]
    dst["runs", "r1", "loss"] = "changed at the destination"
    result = run("cp", folder.base_dir, target, "--json", "--progress")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"copied": 3, "skipped": 2, "failed": 0, "failures": {}}
    assert "5/5" in result.stderr  # the bar starts at the 2 skipped, ends at 5/5
    assert dst["runs", "r1", "loss"] == "changed at the destination"  # kept: not overwritten
    assert dst["n"] == 7
    assert json.loads(ok("cp", folder.base_dir, target, "--json"))["copied"] == 0
    assert json.loads(ok("cp", folder.base_dir, target, "--json", "--overwrite"))["copied"] == 5
    assert dst["runs", "r1", "loss"] == 0.25


def test_cp_no_progress_writes_nothing_to_stderr(folder: FileDirDict[Any], tmp_path: Path) -> None:
    result = run("cp", folder.base_dir, str(tmp_path / "copy"), "--no-progress")
    assert (result.returncode, result.stderr) == (0, "")


def test_cp_partial_failure_names_every_failed_key(folder: FileDirDict[Any], tmp_path: Path) -> None:
    target = str(tmp_path / "text")
    result = run("cp", folder.base_dir, target, "--dst-format", "txt", "--no-progress")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    failed_keys = sorted(line.split(": ")[2] for line in result.stderr.splitlines())
    assert failed_keys == ["Runs/UPPER", "n", "runs/r1/loss", "runs/r2/config"]  # all but the one str
    assert result.stdout == "copied 1, skipped 0, failed 4\n"
    assert FileDirDict(base_dir=target, serialization_format="txt", base_class_for_values=str)["greeting"] == "hello"
    report = json.loads(run("cp", folder.base_dir, target, "--dst-format", "txt", "--json", "--no-progress").stdout)
    assert report["copied"] == 0 and report["skipped"] == 1 and report["failed"] == 4
    assert report["failures"]["n"].startswith("TypeError: ")


def test_cp_between_formats_and_options_per_end(folder: FileDirDict[Any], tmp_path: Path, moto_s3: Any) -> None:
    url = s3_url(moto_s3)
    options = [f"--dst-option={option}" for option in s3_options(moto_s3)[1::2]]
    ok("cp", folder.base_dir, url, "--dst-format", "json", *options, "--no-progress")
    copy: FsspecDict[Any] = FsspecDict(url, storage_options=moto_s3.storage_options(), serialization_format="json")
    assert copy["Runs", "UPPER"] == (1, 2) and copy["runs", "r2", "config"] == {"lr": 0.1, "layers": [3, 4]}
    back = str(tmp_path / "back")
    src_options = [f"--src-option={option}" for option in s3_options(moto_s3)[1::2]]
    ok("cp", url, back, "--src-format", "json", *src_options, "--no-progress")
    assert values_of(FileDirDict(base_dir=back)) == values_of(folder)


def test_cp_from_a_missing_folder_fails(tmp_path: Path) -> None:
    assert "not a folder" in failed("cp", str(tmp_path / "missing"), str(tmp_path / "copy"))
    assert not (tmp_path / "copy").exists()


# --- import cost ---------------------------------------------------------------------------------
def test_tqdm_is_imported_only_when_a_copy_shows_progress() -> None:
    timing = subprocess.run([sys.executable, "-X", "importtime", "-c", "import persidict"], capture_output=True,
                            text=True, timeout=TIMEOUT, check=True)
    assert "tqdm" not in timing.stderr
    code = ("import sys, persidict.pipelines.cli, persidict.pipelines.copy\n"
            "from persidict import LocalDict\n"
            "persidict.pipelines.copy.copy_store(LocalDict(), LocalDict())\n"
            "assert 'tqdm' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], timeout=TIMEOUT, check=True)


# --- copy_store in-process ---------------------------------------------------------------------
def values_of(store: Any) -> dict[Any, Any]:
    return dict(store.items())


def test_copy_store_memory_to_folder(tmp_path: Path) -> None:
    src: LocalDict[Any] = LocalDict()
    for i in range(40):
        src["batch", str(i % 4), f"item{i}"] = {"i": i}
    dst: FileDirDict[Any] = FileDirDict(base_dir=tmp_path / "dst", fsync=False)
    report = copy_store(src, dst, workers=4)
    assert report == CopyReport(copied=40, skipped=0, failures={})
    assert (report.failed, report.total) == (0, 40)
    assert values_of(dst) == values_of(src)


def test_copy_store_folder_to_s3_concurrently(folder: FileDirDict[Any], moto_s3: Any,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(30):
        folder["many", f"k{i}"] = i
    dst: FsspecDict[Any] = FsspecDict(s3_url(moto_s3), storage_options=moto_s3.storage_options())
    moto_s3.max_in_flight = 0
    with moto_s3.latency(0.05):
        report = copy_store(folder, dst, workers=8, progress=True)
    assert (report.copied, report.skipped, report.failed) == (35, 0, 0)
    assert moto_s3.max_in_flight > 1  # the writes overlapped
    assert values_of(dst) == values_of(folder)
    assert "35/35" in capsys.readouterr().err


def test_copy_store_resumes_after_a_partial_copy(folder: FileDirDict[Any], tmp_path: Path) -> None:
    dst: FileDirDict[Any] = FileDirDict(base_dir=tmp_path / "dst", fsync=False)
    assert copy_store(folder.get_subdict("runs"), dst.get_subdict("runs")).copied == 2  # the part that got there
    report = copy_store(folder, dst)
    assert (report.copied, report.skipped) == (3, 2)
    assert values_of(dst) == values_of(folder)
    assert copy_store(folder, dst) == CopyReport(copied=0, skipped=5)


def test_a_fresh_copy_reads_in_bulk_a_resumed_one_only_what_is_missing(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    src: LocalDict[Any] = LocalDict()
    for i in range(10):
        src[f"k{i}"] = i
    bulk_reads: list[int] = []
    items = src.items

    def counted_items() -> Any:
        bulk_reads.append(1)
        return items()

    monkeypatch.setattr(src, "items", counted_items)
    dst: LocalDict[Any] = LocalDict()
    dst["k3"] = 3
    assert copy_store(src, dst) == CopyReport(copied=9, skipped=1)
    assert bulk_reads == []  # resumed: the missing values only, one by one
    assert copy_store(src, LocalDict()).copied == 10
    assert bulk_reads == [1]  # fresh: one src.items()


def test_copy_store_never_overwrites_a_key_written_meanwhile(folder: FileDirDict[Any], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    dst: FileDirDict[Any] = FileDirDict(base_dir=tmp_path / "dst", fsync=False)
    dst["n"] = "written by someone else after the copy listed the destination"
    monkeypatch.setattr(dst, "keys", lambda: iter(()))  # the listing did not see it yet
    report = copy_store(folder, dst)
    assert (report.copied, report.skipped) == (4, 1)
    assert dst["n"] == "written by someone else after the copy listed the destination"
    assert copy_store(folder, dst, overwrite=True).copied == 5
    assert dst["n"] == 7


def test_copy_store_raises_one_error_naming_the_failed_keys(folder: FileDirDict[Any]) -> None:
    dst: LocalDict[Any] = LocalDict(base_class_for_values=str, serialization_format="txt")
    with pytest.raises(CopyError) as caught:
        copy_store(folder, dst)
    error = caught.value
    assert isinstance(error, PersiDictError)
    assert sorted("/".join(key) for key in error.report.failures) == ["Runs/UPPER", "n", "runs/r1/loss",
                                                                       "runs/r2/config"]
    assert all(isinstance(exc, TypeError) for exc in error.report.failures.values())
    assert (error.report.copied, error.report.failed, error.report.total) == (1, 4, 5)
    message = str(error)
    assert message.startswith("4 of 5 values could not be copied (1 copied, 0 skipped):")
    assert all(name in message for name in ("  n: TypeError", "  runs/r1/loss: ", "  Runs/UPPER: "))
    assert pickle.loads(pickle.dumps(error)).report.failed == 4  # reaches a parent process as itself
    assert values_of(dst) == {("greeting",): "hello"}


def test_a_value_the_source_cannot_decode_fails_alone(folder: FileDirDict[Any], tmp_path: Path) -> None:
    # A fresh copy reads with src.items(), which stops at the corrupt value; the rest still gets copied.
    Path(folder.key_to_path("greeting")).write_bytes(b"not a pickle")
    dst: FileDirDict[Any] = FileDirDict(base_dir=tmp_path / "dst", fsync=False)
    with pytest.raises(CopyError) as caught:
        copy_store(folder, dst, workers=2)
    failures = caught.value.report.failures
    assert list(failures) == [("greeting",)]
    assert isinstance(next(iter(failures.values())), BackendError)
    assert caught.value.report.copied == 4 and len(dst) == 4


def test_copy_store_checks_workers() -> None:
    for workers in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            copy_store(LocalDict(), LocalDict(), workers=workers)  # type: ignore[arg-type]


def test_many_failures_are_summarized_in_the_message() -> None:
    src: LocalDict[Any] = LocalDict()
    for i in range(25):
        src[f"k{i:02}"] = i
    with pytest.raises(CopyError) as caught:
        copy_store(src, LocalDict(base_class_for_values=str, serialization_format="txt"))
    assert caught.value.report.failed == 25
    assert str(caught.value).endswith("... and 5 more (all are in .report.failures)")
