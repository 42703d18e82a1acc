"""The ``persidict`` command line (``python -m persidict``, or the ``persidict`` script).

Every command names its store by location.  A local path opens as
``FileDirDict(base_dir=PATH)``, so the command sees what a ``FileDirDict`` on that
folder sees (digest-suffixed file names).  Anything with a protocol opens as
``FsspecDict(URL, storage_options=...)``: ``s3://``, ``gs://``, ``az://``,
``memory://``, chained URLs, and ``file://`` too, which therefore means what
``FsspecDict("file://...")`` means in Python (plain names, no digest suffixes).
``--digest-len`` overrides either default.

Commands that only read (``ls``, ``get``, ``du``, ``rm``, ``gc`` and the source of
``cp``) create nothing: a local folder, bucket or container that does not exist is
an error naming it.  ``ls`` and ``cp`` that find no key of the format asked for, but
files of other formats, name those formats and the options that read them.  ``cp``
shows a progress bar when stderr is a terminal (``--progress``, ``--no-progress``).

Storage options come from ``PERSIDICT_STORAGE_OPTIONS`` (a JSON object), then
``--options-file PATH`` (a JSON object), then each ``-o NAME=VALUE``: later ones
win.  Secrets belong in the first two, which other users cannot read in the
process list.  ``--safe-json`` opens a store (``cp``: its source) so that
reading it never runs code.  ``get`` escapes control characters when it
prints to a terminal (``--raw`` prints them as they are).

Exit status: 0 success; 1 failure (a missing key, a storage error, a value the
store refuses, ...), with one message on stderr and no traceback; 2 bad usage;
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from fsspec.core import split_protocol

from ..backends.credentials import credentials_advice, missing_credentials
from ..codecs.registry import is_text_format
from ..core.fsspec_dict import FsspecDict
from ..keys.tuples import NonEmptySafeStrTuple, key_text
from ..presets.local import FileDirDict
from ..protocol.exceptions import MissingRootError, PersiDictError
from . import coordination_cli
from .copy import DEFAULT_WORKERS, CopyError, CopyReport, copy_store
from .durations import parse_duration

__all__ = ["main"]

_PROG = "persidict"
_LOCAL_PROTOCOLS = frozenset({"file", "local"})
_DEFAULT_GC_AGE = 3600.0
OPTIONS_VARIABLE = "PERSIDICT_STORAGE_OPTIONS"
"""The environment variable holding storage options as a JSON object (keeps secrets out of the process list)."""


class CommandFailed(Exception):
    """A failure the command line reports in one line (exit status 1)."""


_FAILURES = (CommandFailed, PersiDictError, OSError, ValueError, TypeError, ImportError)
"""What a command may fail with: reported on stderr without a traceback (``KeyError`` too, see ``main``)."""


# --- arguments ------------------------------------------------------------------------------
def parse_key(text: str) -> NonEmptySafeStrTuple:
    """A key from the command line: its parts separated by ``/`` (``runs/r1/loss``)."""
    try:
        return NonEmptySafeStrTuple(tuple(text.split("/")))
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"bad key {text!r}: {exc}") from exc


def parse_option(text: str) -> tuple[str, Any]:
    """A storage option ``NAME=VALUE``; a VALUE that is valid JSON is decoded (``true``, ``5``, ``{...}``)."""
    name, separator, raw = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw


def _options_object(text: str, source: str) -> dict[str, Any]:
    """Storage options from the JSON object ``text``; the error never repeats the text (it may hold secrets)."""
    try:
        options = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{source} is not valid JSON ({exc.__class__.__name__} at character "
                         f"{getattr(exc, 'pos', '?')})") from None
    if not isinstance(options, dict):
        raise ValueError(f"{source} must hold a JSON object of storage options, not a {type(options).__name__}")
    return options


def options_file(path: str) -> dict[str, Any]:
    """``--options-file PATH``: storage options from a file holding one JSON object."""
    try:
        with open(path, encoding="utf-8") as file:
            return _options_object(file.read(), f"--options-file {path}")
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def environment_options() -> dict[str, Any]:
    """Storage options from ``PERSIDICT_STORAGE_OPTIONS`` (empty if it is not set)."""
    text = os.environ.get(OPTIONS_VARIABLE, "").strip()
    if not text:
        return {}
    try:
        return _options_object(text, OPTIONS_VARIABLE)
    except ValueError as exc:
        raise CommandFailed(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return number


def _seconds(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return number


# --- opening stores -------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreSpec:
    """Where a store is and how to open it, as given on the command line."""

    location: str
    serialization_format: str = "pkl"
    storage_options: tuple[tuple[str, Any], ...] = ()
    digest_len: int | None = None
    safe_json: bool = False


def _local_folder(location: str) -> str | None:
    """The local folder ``location`` names, or None for a remote or chained URL."""
    protocol, path = split_protocol(location)
    if protocol is None:
        return location
    return path if protocol in _LOCAL_PROTOCOLS else None


def open_store(spec: StoreSpec, *, create: bool) -> FsspecDict[Any]:
    """Open the store ``spec`` names; unless ``create``, a local folder must already exist.

    A text format (``txt``, ``md``, ...) holds ``str`` values only, so the store is
    opened with ``base_class_for_values=str``.
    """
    folder = _local_folder(spec.location)
    if not create and folder is not None and not os.path.isdir(folder):
        raise CommandFailed(f"no store at {spec.location}: not a folder (check the path)")
    options: dict[str, Any] = {
        "serialization_format": spec.serialization_format,
        "base_class_for_values": str if is_text_format(spec.serialization_format) else None,
        "safe_json": spec.safe_json,
    }
    if spec.digest_len is not None:
        options["digest_len"] = spec.digest_len
    if split_protocol(spec.location)[0] is None:
        return FileDirDict(base_dir=spec.location, **options)
    # Reading commands create no bucket: a missing one is reported by the first request (MissingRootError).
    return FsspecDict(spec.location, storage_options=dict(spec.storage_options) or None, create_root=create,
                      **options)


def _spec(
    args: argparse.Namespace, location: str, fmt: str | None = None, extra_options: Sequence[tuple[str, Any]] = (),
    *, safe_json: bool | None = None,
) -> StoreSpec:
    """The spec of ``location`` from the common options; the keywords refine one end of ``cp``.

    Storage options: the environment's, then ``--options-file``'s, then ``-o``, then ``extra_options``.
    """
    options = {**environment_options(), **(args.options_file or {})}
    options.update([*args.option, *extra_options])
    return StoreSpec(location, fmt or args.format, tuple(options.items()), args.digest_len,
                     args.safe_json if safe_json is None else safe_json)


# --- output -----------------------------------------------------------------------------------
def _print_json(data: Any) -> None:
    print(json.dumps(data, allow_nan=False))


def _render(value: Any, *, as_json: bool) -> str:
    """A value for printing: a string as it is, JSON with ``as_json``, else its repr."""
    if as_json:
        try:
            return json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise CommandFailed(f"the value cannot be written as JSON ({exc}); without --json it prints as "
                                f"{_short_repr(value)}") from exc
    return value if isinstance(value, str) else repr(value)


# C0 and C1 control characters but newline and tab, and the bidirectional overrides and
# isolates that reorder what a terminal shows ("Trojan Source").
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\u202e``), so a terminal runs none.

    Newlines and tabs stay: a multi-line value still prints as lines.
    """
    return _CONTROLS.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def _short_repr(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _iso(timestamp: float | None) -> str:
    return "-" if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


# --- commands ---------------------------------------------------------------------------------
def _ls(args: argparse.Namespace) -> int:
    store = open_store(_spec(args, args.url), create=False)
    keys = sorted(key_text(key) for key in store)
    if not keys:
        _refuse_other_formats(_spec(args, args.url), "ls")
    if args.json:
        _print_json(keys)
    else:
        for key in keys:
            print(key)
    return 0


def _get(args: argparse.Namespace) -> int:
    value = open_store(_spec(args, args.url), create=False)[args.key]
    text = _render(value, as_json=args.json)
    if not args.raw and sys.stdout.isatty():
        text = escape_controls(text)  # someone else's value must not drive our terminal
    print(text, end="" if text.endswith("\n") else "\n")
    return 0


def _put(args: argparse.Namespace) -> int:
    value = _json_value(args.value) if args.json else args.value
    open_store(_spec(args, args.url), create=True)[args.key] = value
    return 0


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CommandFailed(f"VALUE is not valid JSON: {exc}") from exc


def _rm(args: argparse.Namespace) -> int:
    if (args.key is None) == (args.older_than is None):
        print(f"{_PROG} rm: error: give a KEY or --older-than DURATION (one of the two)", file=sys.stderr)
        return 2
    store = open_store(_spec(args, args.url), create=False)
    if args.key is not None:
        del store[args.key]
        return 0
    removed = store.delete_older_than(time.time() - args.older_than)
    if args.json:
        _print_json({"removed": removed})
    else:
        print(f"removed {removed} key(s)")
    return 0


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _rm_arguments(parser: argparse.ArgumentParser) -> None:
    _url_argument(parser)
    parser.add_argument("key", metavar="KEY", type=parse_key, nargs="?", help="the key to delete (a/b/c)")
    parser.add_argument("--older-than", metavar="DURATION", type=_duration,
                        help="instead of a KEY: every key last written longer ago than this (90s, 15m, 12h, 7d, 2w)")
    _json_flag(parser, 'with --older-than: print {"removed": N} as JSON')


@dataclass(frozen=True)
class Usage:
    """What ``du`` reports: the number of keys, their bytes, and the oldest and newest write."""

    keys: int
    bytes: int
    oldest: float | None
    newest: float | None


def disk_usage(store: FsspecDict[Any]) -> Usage:
    """Count the keys of ``store`` and the bytes of their files (other files in its tree are not counted)."""
    timestamps = dict(store.keys_and_timestamps())
    sizes = store.fs.du(store.url, total=False)
    total = sum(int(sizes.get(store.key_to_path(key), 0)) for key in timestamps)
    stamps = timestamps.values()
    return Usage(len(timestamps), total, min(stamps, default=None), max(stamps, default=None))


def _du(args: argparse.Namespace) -> int:
    usage = disk_usage(open_store(_spec(args, args.url), create=False))
    if args.json:
        _print_json(vars(usage))
    else:
        print(f"keys    {usage.keys}\nbytes   {usage.bytes}")
        print(f"oldest  {_iso(usage.oldest)}\nnewest  {_iso(usage.newest)}")
    return 0


def _cp(args: argparse.Namespace) -> int:
    src_spec = _spec(args, args.src, args.src_format, args.src_option)
    src = open_store(src_spec, create=False)
    if not src:
        _refuse_other_formats(src_spec, "cp", "--src-format")
    dst = open_store(_spec(args, args.dst, args.dst_format, args.dst_option, safe_json=False), create=True)
    try:
        report = copy_store(src, dst, overwrite=args.overwrite, workers=args.workers, progress=args.progress)
    except CopyError as exc:
        report = exc.report
        for key, error in report.failures.items():
            print(f"{_PROG}: not copied: {key_text(key)}: {type(error).__name__}: {error}", file=sys.stderr)
    _print_report(report, as_json=args.json)
    return 1 if report.failures else 0


def _refuse_other_formats(spec: StoreSpec, command: str, option: str = "--format") -> None:
    """Fail if the store ``spec`` names holds no keys of its format but files of others, naming the options
    that read them (with ``--digest-len 0`` for files whose names carry no digest suffix)."""
    found = suffix_counts(open_store(spec, create=False))
    if not found:
        return  # an empty store: nothing to say
    counts = ", ".join(_count(count, f"{suffix} file") for suffix, count in found.items())
    readers = [reader for suffix in found if (reader := _reader_of(spec, suffix, option))]
    verb = "lists" if command == "ls" else "reads"
    advice = "; ".join(f"{command} {options} {verb} {_count(n, 'key')}" for options, n in readers) or "no keys"
    raise CommandFailed(f"no {spec.serialization_format} keys in {spec.location}; found {counts}: {advice}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _reader_of(spec: StoreSpec, suffix: str, option: str) -> tuple[str, int] | None:
    """The options that open ``spec``'s location as a store of ``suffix`` files holding keys, and how many."""
    for digest_len in (spec.digest_len, 0):
        try:
            count = len(open_store(replace(spec, serialization_format=suffix, digest_len=digest_len), create=False))
        except (PersiDictError, ValueError, TypeError, ImportError):
            continue  # a layout recorded for another format, a format whose library is missing, ...
        if count:
            return f"{option} {suffix}" + ("" if digest_len == spec.digest_len else " --digest-len 0"), count
    return None


def suffix_counts(store: FsspecDict[Any]) -> dict[str, int]:
    """The suffixes of the files below ``store``'s root with their counts, most common first.

    Hidden files (the layout record, writers' temporary files) are no values.
    """
    counts: dict[str, int] = {}
    for path in store.fs.find(store.url):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        stem, dot, suffix = name.rpartition(".")
        if dot and stem and not name.startswith(".") and suffix.isidentifier():
            counts[suffix] = counts.get(suffix, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _print_report(report: CopyReport, *, as_json: bool) -> None:
    if as_json:
        failures = {key_text(key): f"{type(exc).__name__}: {exc}" for key, exc in report.failures.items()}
        _print_json({"copied": report.copied, "skipped": report.skipped, "failed": report.failed,
                     "failures": failures})
    else:
        print(f"copied {report.copied}, skipped {report.skipped}, failed {report.failed}")


def _gc(args: argparse.Namespace) -> int:
    store = open_store(_spec(args, args.url), create=False)
    next(iter(store), None)  # object stores keep no temporary files: this look is what finds a missing bucket
    removed = store.remove_temporary_files(older_than=args.older_than)
    if args.json:
        _print_json({"removed": removed})
    else:
        print(f"removed {removed} temporary file(s)")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo()
    return 0


# --- the parser and the dispatch table --------------------------------------------------------
def _url_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL", help="a local folder, or any fsspec URL (s3://bucket/prefix, ...)")


def _key_argument(parser: argparse.ArgumentParser) -> None:
    _url_argument(parser)
    parser.add_argument("key", metavar="KEY", type=parse_key, help="the key, its parts separated by / (a/b/c)")


def _json_flag(parser: argparse.ArgumentParser, help: str = "print JSON") -> None:
    parser.add_argument("--json", action="store_true", help=help)


def _ls_arguments(parser: argparse.ArgumentParser) -> None:
    _url_argument(parser)
    _json_flag(parser, "print one JSON list of keys")


def _get_arguments(parser: argparse.ArgumentParser) -> None:
    _key_argument(parser)
    _json_flag(parser, "print the value as JSON (fails for values JSON cannot hold)")
    parser.add_argument("--raw", action="store_true",
                        help="print control characters as they are (by default a terminal gets them escaped)")


def _put_arguments(parser: argparse.ArgumentParser) -> None:
    _key_argument(parser)
    parser.add_argument("value", metavar="VALUE", help="the value: a string (a JSON document with --json)")
    _json_flag(parser, "decode VALUE as JSON (7 stores the int 7)")


def _du_arguments(parser: argparse.ArgumentParser) -> None:
    _url_argument(parser)
    _json_flag(parser, 'print {"keys", "bytes", "oldest", "newest"} (POSIX seconds) as JSON')


def _cp_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC", help="the store to copy from")
    parser.add_argument("dst", metavar="DST", help="the store to copy into (created if needed)")
    parser.add_argument("--overwrite", action="store_true", help="replace values DST already holds (default: skip)")
    parser.add_argument("--workers", metavar="N", type=_positive_int, default=DEFAULT_WORKERS,
                        help=f"writes in flight at once (default {DEFAULT_WORKERS})")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", action="store_true", default=None,
                          help="show a progress bar on stderr (default: only when stderr is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                          help="no progress bar")
    for end in ("src", "dst"):
        parser.add_argument(f"--{end}-format", metavar="FMT", help=f"the format of {end.upper()} (default --format)")
        parser.add_argument(f"--{end}-option", metavar="NAME=VALUE", type=parse_option, action="append", default=[],
                            help=f"a storage option for {end.upper()} only (repeatable)")
    _json_flag(parser, 'print {"copied", "skipped", "failed", "failures"} as JSON')


def _gc_arguments(parser: argparse.ArgumentParser) -> None:
    _url_argument(parser)
    parser.add_argument("--older-than", metavar="SECONDS", type=_seconds, default=_DEFAULT_GC_AGE,
                        help=f"only temporary files older than this (default {_DEFAULT_GC_AGE:.0f})")
    _json_flag(parser, 'print {"removed": N} as JSON')


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """The command takes none."""


@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, its arguments, and what runs it."""

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    opens_stores: bool = True


COMMANDS: dict[str, Command] = {
    "ls": Command("list the keys, one per line (parts joined by /)", _ls_arguments, _ls),
    "get": Command("print one value (a string as it is, anything else as its repr)", _get_arguments, _get),
    "put": Command("store a value under a key: a string, or JSON with --json", _put_arguments, _put),
    "rm": Command("delete a key, or every key older than a duration (--older-than 7d)", _rm_arguments, _rm),
    "du": Command("count the keys and their bytes; the oldest and newest write", _du_arguments, _du),
    "cp": Command("copy every value into another store: concurrent, resumable (keys DST holds are skipped)",
                  _cp_arguments, _cp),
    "gc": Command("remove temporary files that writers killed mid-write left behind", _gc_arguments, _gc),
    "demo": Command("show the main job: memoize, a process pool sharing a store, ls and cp, the same on S3",
                    _no_arguments, _demo,
                    opens_stores=False),
    "check": Command("probe whether the server honours conditional writes (If-None-Match, If-Match): "
                     "leases, queues and memoize need it", coordination_cli.check_arguments, coordination_cli.check),
    "queue": Command("show a work queue's counts, with a progress bar until every task is closed",
                     coordination_cli.queue_arguments, coordination_cli.queue),
}


class _VersionAction(argparse.Action):
    """``--version``: reads the installed version only when asked (importlib.metadata is slow to import)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        from .. import __version__

        print(f"{_PROG} {__version__}")
        parser.exit()


def _store_options() -> argparse.ArgumentParser:
    """The options of every command that opens a store."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--format", default="pkl", metavar="FMT",
                         help="serialization format: pkl (default), json, dill, or a text format such as txt")
    options.add_argument("-o", "--option", metavar="NAME=VALUE", type=parse_option, action="append", default=[],
                         help="a storage option for URLs (repeatable; JSON values are decoded): "
                              "-o endpoint_url=http://...; put secrets in --options-file or "
                              f"${OPTIONS_VARIABLE}, which the process list does not show")
    options.add_argument("--options-file", metavar="PATH", type=options_file,
                         help=f"storage options from a JSON object in PATH (after ${OPTIONS_VARIABLE}, before -o)")
    options.add_argument("--safe-json", action="store_true",
                         help="open the store (cp: its source) so that reading never runs code: json is read as "
                              "safe typed JSON, pkl and dill are refused")
    options.add_argument("--digest-len", type=int, metavar="N",
                         help="digest suffix length of file names (default: 4 for a local path, 0 for a URL)")
    return options


def build_parser() -> argparse.ArgumentParser:
    """The ``persidict`` parser, one subparser per entry of ``COMMANDS``."""
    parser = argparse.ArgumentParser(prog=_PROG, description="Persistent dictionaries for distributed work.")
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    store_options = _store_options()
    for name, command in COMMANDS.items():
        parents = [store_options] if command.opens_stores else []
        command.arguments(subparsers.add_parser(name, help=command.help, description=command.help, parents=parents))
    return parser


def _fail(message: str) -> int:
    print(f"{_PROG}: error: {message}", file=sys.stderr)
    return 1


def _output_closed() -> int:
    """The reader of our output went away (``persidict ls URL | head``): stop quietly, status 1."""
    # Later writes (the interpreter's final flush included) go nowhere instead of failing again.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status = COMMANDS[args.command].run(args)
        sys.stdout.flush()  # a closed pipe fails here, inside the handlers below
        return status
    except BrokenPipeError:
        return _output_closed()
    except KeyboardInterrupt:  # Ctrl-C: a copy resumes where it stopped when run again
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130
    except MissingRootError as exc:
        return _fail(f"the {exc.root} does not exist: {exc.url} (check the name; put and cp create it)")
    except KeyError as exc:
        key = exc.args[0] if exc.args else None
        return _fail(f"key not found: {key_text(key) if isinstance(key, NonEmptySafeStrTuple) else key}")
    except _FAILURES as exc:
        return _fail(_for_the_command_line(str(exc) or type(exc).__name__, exc))


def _for_the_command_line(message: str, exc: BaseException) -> str:
    """``message``, with advice on credentials given as command-line options instead of Python arguments."""
    cloud = missing_credentials(exc)
    if cloud is None:
        return message
    return message.replace(credentials_advice(cloud), credentials_advice(cloud, command_line=True))
