"""The command line in a newcomer's first hour: reads create nothing, empty answers say why, bars only on terminals.

Every command runs as ``python -m persidict`` in a subprocess; S3 is the session's moto server.
"""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest

from persidict import FileDirDict

from ..servers.moto_s3 import MotoS3
from .test_cli import TIMEOUT, failed, ok, run, s3_options


# --- reading commands create nothing ----------------------------------------------------------------
@pytest.mark.parametrize("command", [["ls"], ["du"], ["get", "KEY"], ["rm", "KEY"], ["gc"]], ids=lambda c: c[0])
def test_a_missing_bucket_is_an_error_naming_it(s3: MotoS3, command: list[str]) -> None:
    args = [command[0], "s3://typo-bukcet/runs", *command[1:], *s3_options(s3)]
    assert failed(*args) == ("persidict: error: the bucket 'typo-bukcet' does not exist: s3://typo-bukcet/runs "
                             "(check the name; put and cp create it)\n")
    assert "typo-bukcet" not in s3.buckets()


def test_cp_from_a_missing_bucket_creates_neither_end(s3: MotoS3) -> None:
    failed("cp", "s3://typo-bukcet/runs", "s3://copy-bucket/runs", *s3_options(s3))
    assert not {"typo-bukcet", "copy-bucket"} & s3.buckets()


def test_put_creates_the_bucket(s3: MotoS3) -> None:
    ok("put", "s3://new-bucket/runs", "a/b", "1", *s3_options(s3))
    assert ok("ls", "s3://new-bucket/runs", *s3_options(s3)) == "a/b\n"


def test_a_missing_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    assert failed("ls", missing) == f"persidict: error: no store at {missing}: not a folder (check the path)\n"
    assert not os.path.exists(missing)


def test_missing_credentials_say_where_they_are_looked_for(s3: MotoS3, tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    result = run("ls", "s3://cli-bucket/big", "-o", f"endpoint_url={s3.url}", env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "persidict: error: list failed: no AWS credentials were found. They are looked for in the environment "
        "(AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), in ~/.aws/credentials and ~/.aws/config, "
        "and in the instance's or container's role; or give them with -o key=... -o secret=... (better: in "
        "$PERSIDICT_STORAGE_OPTIONS or --options-file, which the process list does not show)\n"
    )


# --- nothing of the asked format, files of others --------------------------------------------------
@pytest.fixture
def texts(tmp_path: Path) -> Path:
    """A folder of plain text files, written by hand (no digest suffixes in their names)."""
    folder = tmp_path / "texts"
    (folder / "notes").mkdir(parents=True)
    for i in range(3):
        (folder / f"doc{i}.txt").write_text(f"text {i}")
    (folder / "notes" / "readme.md").write_text("# notes")
    return folder


def test_ls_names_the_formats_it_found(texts: Path) -> None:
    assert failed("ls", str(texts)) == (
        f"persidict: error: no pkl keys in {texts}; found 3 txt files, 1 md file: ls --format txt --digest-len 0 "
        "lists 3 keys; ls --format md --digest-len 0 lists 1 key\n")
    assert ok("ls", str(texts), "--format", "txt", "--digest-len", "0") == "doc0\ndoc1\ndoc2\n"


def test_ls_suggests_the_format_alone_when_the_names_carry_digests(tmp_path: Path) -> None:
    store: FileDirDict[str] = FileDirDict(base_dir=tmp_path / "s", serialization_format="txt",
                                          base_class_for_values=str)
    store["a"] = "x"
    store["b"] = "y"
    assert failed("ls", str(tmp_path / "s")) == (
        f"persidict: error: no pkl keys in {tmp_path / 's'}; found 2 txt files: ls --format txt lists 2 keys\n")


def test_cp_names_the_formats_it_found_and_writes_nothing(texts: Path, tmp_path: Path) -> None:
    assert failed("cp", str(texts), str(tmp_path / "copy")) == (
        f"persidict: error: no pkl keys in {texts}; found 3 txt files, 1 md file: cp --src-format txt "
        "--digest-len 0 reads 3 keys; cp --src-format md --digest-len 0 reads 1 key\n")
    assert not (tmp_path / "copy").exists()


def test_an_empty_store_lists_nothing_and_succeeds(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert ok("ls", str(tmp_path / "empty")) == ""


# --- the progress bar ---------------------------------------------------------------------------------
@pytest.fixture
def source(tmp_path: Path) -> str:
    store: FileDirDict[Any] = FileDirDict(base_dir=tmp_path / "src")
    for i in range(5):
        store[f"k{i}"] = i
    return str(tmp_path / "src")


def _stderr_on_a_terminal(*args: str) -> str:
    """Run ``python -m persidict ARGS`` with stderr on a pseudo-terminal; return what it wrote there."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a width
    with subprocess.Popen([sys.executable, "-m", "persidict", *args], stdout=subprocess.DEVNULL,
                          stderr=terminal) as process:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal's other end closed: the command is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=TIMEOUT)
    os.close(controller)
    return b"".join(chunks).decode()


def test_no_bar_when_stderr_is_not_a_terminal(source: str, tmp_path: Path) -> None:
    result = run("cp", source, str(tmp_path / "copy"))
    assert (result.returncode, result.stdout, result.stderr) == (0, "copied 5, skipped 0, failed 0\n", "")


def test_a_bar_on_a_terminal_or_when_asked(source: str, tmp_path: Path) -> None:
    assert "5/5" in _stderr_on_a_terminal("cp", source, str(tmp_path / "on-a-terminal"))
    assert "5/5" in run("cp", source, str(tmp_path / "asked"), "--progress").stderr
    assert _stderr_on_a_terminal("cp", source, str(tmp_path / "refused"), "--no-progress") == ""
