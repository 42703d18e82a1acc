"""The command line on folders and values other people wrote (docs/security.md, docs/cli.md#trust).

Run end to end as ``python -m persidict ...``: planted symlinks, values that
would drive the terminal or run code when read, and storage options that must
stay out of the process list.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from persidict import FileDirDict, FsspecDict
from persidict.core.layout import LAYOUT_NAME
from persidict.pipelines.cli import escape_controls

from ..servers.moto_s3 import CREDENTIALS
from .test_cli import TIMEOUT, failed, ok, run, s3_url

TWO_HOURS_AGO = time.time() - 7200


# --- symlinks planted in a shared folder: a matrix of commands ---------------------------------------
@pytest.fixture
def shared(tmp_path: Path) -> dict[str, Path]:
    """A txt store in ``shared/`` where someone planted links to ``outside/``."""
    outside, root = tmp_path / "outside", tmp_path / "shared"
    (outside / "folder").mkdir(parents=True)
    store: FileDirDict[str] = FileDirDict(base_dir=root, serialization_format="txt", base_class_for_values=str)
    store["ordinary"] = "mine"
    value_in_link = Path(store.key_to_path(("link", "x")))
    (outside / "folder" / value_in_link.name).write_text("outside value")
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    temp = outside / "folder" / (".__tmp__" + "0123456789abcdef")
    temp.write_text("an outside file named like a temporary file")
    os.utime(temp, (TWO_HOURS_AGO, TWO_HOURS_AGO))
    value_in_link.parent.symlink_to(outside / "folder", target_is_directory=True)
    Path(store.key_to_path("innocent")).symlink_to(outside / "passwd")
    temp_link = root / (".__tmp__" + "fedcba9876543210")  # gc skips links: it removes only files of writers
    temp_link.symlink_to(outside / "passwd")
    os.utime(temp_link, (TWO_HOURS_AGO, TWO_HOURS_AGO), follow_symlinks=False)
    return {"root": root, "outside": outside, "dir_link": value_in_link.parent,
            "file_link": Path(store.key_to_path("innocent")), "temp_link": temp_link}


def snapshot(folder: Path) -> dict[str, bytes]:
    """The content of every file below ``folder`` but the stores' layout records."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != LAYOUT_NAME}


def _cp(paths: dict[str, Path]) -> None:
    export = paths["root"].parent / "exported"
    assert json.loads(ok("cp", "--format", "txt", str(paths["root"]), str(export), "--json", "--no-progress")) == {
        "copied": 1, "skipped": 0, "failed": 0, "failures": {}}
    exported: FileDirDict[str] = FileDirDict(base_dir=export, serialization_format="txt", base_class_for_values=str)
    assert dict(exported.items()) == {("ordinary",): "mine"}
    assert list(snapshot(export).values()) == [b"mine"]  # the file behind the link was not copied


COMMANDS: dict[str, Any] = {
    "get through the folder link": lambda p: _check("key not found: link/x" in failed(
        "get", "--format", "txt", str(p["root"]), "link/x")),
    "get the file link": lambda p: _check("key not found: innocent" in failed(
        "get", "--format", "txt", str(p["root"]), "innocent")),
    "put through the folder link": lambda p: _check("symbolic link" in failed(
        "put", "--format", "txt", str(p["root"]), "link/x", "overwritten")
        and str(p["dir_link"]) in failed("put", "--format", "txt", str(p["root"]), "link/new", "planted")),
    "put over the file link": lambda p: _check(str(p["file_link"]) in failed(
        "put", "--format", "txt", str(p["root"]), "innocent", "overwritten")),
    "rm through the folder link": lambda p: _check("key not found: link/x" in failed(
        "rm", "--format", "txt", str(p["root"]), "link/x")),
    "rm the file link": lambda p: _check("key not found: innocent" in failed(
        "rm", "--format", "txt", str(p["root"]), "innocent")),
    "ls": lambda p: _check(ok("ls", "--format", "txt", str(p["root"])) == "ordinary\n"),
    "du": lambda p: _check(json.loads(ok("du", "--format", "txt", str(p["root"]), "--json"))["keys"] == 1),
    "gc": lambda p: _check(ok("gc", str(p["root"]), "--older-than", "0") == "removed 0 temporary file(s)\n"),
    "cp": _cp,
}


def _check(condition: bool) -> None:
    assert condition


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_command_reaches_outside_through_a_planted_link(shared: dict[str, Path], command: str) -> None:
    before = snapshot(shared["outside"])
    COMMANDS[command](shared)
    assert snapshot(shared["outside"]) == before
    assert all(shared[link].is_symlink() for link in ("dir_link", "file_link", "temp_link"))


# --- gc never deletes a value ---------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["folder", "dir://"])
def test_gc_keeps_values_whose_keys_look_temporary(tmp_path: Path, where: str) -> None:
    if where == "folder":
        location, options, store = str(tmp_path), [], FileDirDict(base_dir=tmp_path)
    else:
        options = ["-o", f"path={tmp_path}", "-o", "target_protocol=file"]
        location = "dir://store"
        store = FsspecDict(location, storage_options={"path": str(tmp_path), "target_protocol": "file"})
    keys = [".__tmp__0123456789abcdef", ".__tmp__abcd_123", ".__tmp__x"]
    for key in keys:
        store[key] = key
        os.utime(store.key_to_path(key) if where == "folder" else tmp_path / store.key_to_path(key),
                 (TWO_HOURS_AGO, TWO_HOURS_AGO))
    assert ok("gc", location, *options, "--older-than", "0") == "removed 0 temporary file(s)\n"
    assert ok("ls", location, *options).split() == sorted(keys)


# --- what get prints ----------------------------------------------------------------------------------
HOSTILE = "title\x1b]0;pwned\x07\x1b[2J\rhidden\u202egnp.exe\tend\nsecond line"


def run_on_a_terminal(*args: str) -> str:
    """``python -m persidict ARGS`` with its stdout on a pseudo-terminal; what the terminal received."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "persidict", *args], stdout=terminal,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(terminal)
    received = b""
    while True:
        try:
            chunk = os.read(controller, 1 << 16)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        received += chunk
    assert process.wait(timeout=TIMEOUT) == 0, process.stderr.read() if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    os.close(controller)
    return received.decode().replace("\r\n", "\n")  # the terminal turns each newline into CR LF


@pytest.fixture
def hostile(tmp_path: Path) -> str:
    root = str(tmp_path / "store")
    store: FileDirDict[Any] = FileDirDict(base_dir=root)
    store["text"] = HOSTILE
    store["object"] = {"note": HOSTILE}
    return root


def test_get_escapes_control_characters_on_a_terminal(hostile: str) -> None:
    shown = run_on_a_terminal("get", hostile, "text")
    assert shown == "title\\x1b]0;pwned\\x07\\x1b[2J\\x0dhidden\\u202egnp.exe\tend\nsecond line\n"
    assert "\x1b" not in run_on_a_terminal("get", hostile, "object")


def test_get_raw_and_piped_output_print_the_value_as_it_is(hostile: str) -> None:
    assert run_on_a_terminal("get", hostile, "text", "--raw") == HOSTILE + "\n"
    piped = ok("get", hostile, "text")  # into another program: as it is (text mode reads the CR as a newline)
    assert piped == HOSTILE.replace("\r", "\n") + "\n"


@pytest.mark.parametrize(("text", "shown"), [
    ("plain\ttext\nlines", "plain\ttext\nlines"),
    ("\x00\x1b\x7f\x85\x9f", "\\x00\\x1b\\x7f\\x85\\x9f"),
    ("\u202eevil\u2066\u200f", "\\u202eevil\\u2066\\u200f"),
    ("ünïcödé ✓ 漢字", "ünïcödé ✓ 漢字"),
])
def test_escape_controls(text: str, shown: str) -> None:
    assert escape_controls(text) == shown


# --- formats that run code when read -----------------------------------------------------------------
def _plant_code(root: Path, marker: Path) -> None:
    """A json value someone else wrote: loading it with jsonpickle calls os.mkdir(marker)."""
    store: FileDirDict[Any] = FileDirDict(base_dir=root, serialization_format="json")
    store["plain"] = [1, 2]
    Path(store.key_to_path("payload")).write_text(json.dumps(
        {"py/reduce": [{"py/function": "os.mkdir"}, {"py/tuple": [str(marker)]}]}))


def test_safe_json_reads_untrusted_json_without_running_it(tmp_path: Path) -> None:
    root, marker = tmp_path / "theirs", tmp_path / "code-ran"
    _plant_code(root, marker)
    message = failed("get", "--format", "json", "--safe-json", str(root), "payload")
    assert "jsonpickle tag" in message and not marker.exists()
    assert ok("get", "--format", "json", "--safe-json", str(root), "plain") == "[1, 2]\n"
    copy = tmp_path / "copy"
    result = run("cp", "--format", "json", "--safe-json", str(root), str(copy), "--no-progress")
    assert result.returncode == 1 and "not copied: payload" in result.stderr and not marker.exists()
    assert dict(FileDirDict(base_dir=copy, serialization_format="json").items()) == {("plain",): [1, 2]}
    run("get", "--format", "json", str(root), "payload")  # without --safe-json, reading runs their code
    assert marker.is_dir()


@pytest.mark.parametrize("fmt", ["pkl", "dill"])
def test_safe_json_refuses_formats_that_run_code(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "store").mkdir()
    assert "safe_json" in failed("ls", "--format", fmt, "--safe-json", str(tmp_path / "store"))


# --- storage options outside the process list -----------------------------------------------------------
def _options(server: Any, **changes: Any) -> dict[str, Any]:
    return {"endpoint_url": server.url, "key": CREDENTIALS["key"], "secret": CREDENTIALS["secret"], **changes}


def _store_with_a_key(server: Any) -> str:
    url = s3_url(server)
    FsspecDict(url, storage_options=server.storage_options())["a", "b"] = 1
    return url


def test_storage_options_from_the_environment(moto_s3: Any) -> None:
    url = _store_with_a_key(moto_s3)
    env = {"PERSIDICT_STORAGE_OPTIONS": json.dumps(_options(moto_s3))}
    assert ok("ls", url, env=env) == "a/b\n"
    assert ok("get", url, "a/b", env=env) == "1\n"


def test_storage_options_from_a_file(moto_s3: Any, tmp_path: Path) -> None:
    url = _store_with_a_key(moto_s3)
    options = tmp_path / "options.json"
    options.write_text(json.dumps(_options(moto_s3)))
    options.chmod(0o600)
    assert ok("ls", url, "--options-file", str(options)) == "a/b\n"


def test_later_option_sources_win(moto_s3: Any, tmp_path: Path) -> None:
    url = _store_with_a_key(moto_s3)
    wrong = _options(moto_s3, endpoint_url="http://127.0.0.1:9")  # nothing listens there
    env = {"PERSIDICT_STORAGE_OPTIONS": json.dumps(wrong)}
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"endpoint_url": moto_s3.url}))
    assert ok("ls", url, "--options-file", str(options), env=env) == "a/b\n"  # the file beats the environment
    options.write_text(json.dumps(wrong))
    assert ok("ls", url, "--options-file", str(options), "-o", f"endpoint_url={moto_s3.url}", env=env) == "a/b\n"


def test_bad_option_sources_fail_without_repeating_their_content(tmp_path: Path) -> None:
    secret = "s3cr3t-value"
    result = run("ls", str(tmp_path), env={"PERSIDICT_STORAGE_OPTIONS": f'{{"secret": "{secret}"'})
    assert result.returncode == 1 and "PERSIDICT_STORAGE_OPTIONS is not valid JSON" in result.stderr
    result = run("ls", str(tmp_path), env={"PERSIDICT_STORAGE_OPTIONS": json.dumps([secret])})
    assert result.returncode == 1 and "JSON object" in result.stderr
    options = tmp_path / "options.json"
    options.write_text(f"secret={secret}")
    result = run("ls", str(tmp_path), "--options-file", str(options))
    assert result.returncode == 2 and "is not valid JSON" in result.stderr
    result = run("ls", str(tmp_path), "--options-file", str(tmp_path / "missing.json"))
    assert result.returncode == 2
    for output in (result.stdout, result.stderr):
        assert secret not in output
