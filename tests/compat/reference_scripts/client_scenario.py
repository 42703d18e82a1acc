"""Play a Pythagoras-like client with whichever persidict this interpreter has; print a JSON transcript.

``test_client_usage.py`` runs it with our persidict and with 0.309.0 and requires
equal transcripts. The client is ``tests/compat/client_workers.py``.

Argument: a JSON spec ``{"command": ..., "workdir": <absolute folder>, ...}``:

- ``run`` plays every usage in ``workdir`` (and on S3 when the spec has
  ``"s3": {"bucket": <name>, "root_prefix": <prefix>}``; the endpoint and
  credentials come from the standard ``AWS_*`` variables);
- ``reread`` opens the stores that ``run`` left in ``workdir`` (possibly with
  the other implementation) and describes their content;
- ``json_params`` prints mixinforge JSON of a portal, a store and flags;
  ``load_json_params`` loads such JSON (``"blobs"`` in the spec) and describes it.

Prints ``{"persidict": <version>, "transcript": {section: observations}}``. The
observations are values read back, types, lengths, booleans and the types of
raised exceptions: never ETags, timestamps, absolute paths or messages.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pickle
import sys
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/compat: the client_workers module

import client_workers as cw
from mixinforge import dumpjs, loadjs, update_jsparams

import persidict
from persidict import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    DELETE_CURRENT,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
    IF_ETAG_CHANGED,
    ITEM_NOT_AVAILABLE,
    KEEP_CURRENT,
    NEVER_RETRIEVE,
    VALUE_NOT_RETRIEVED,
    ConditionalOperationResult,
    FileDirDict,
    Joker,
    LocalDict,
    OverlappingMultiDict,
    PersiDict,
    SafeStrTuple,
    WriteOnceDict,
    replace_unsafe_chars,
)

FLAGS = {"KEEP_CURRENT": KEEP_CURRENT, "DELETE_CURRENT": DELETE_CURRENT, "ITEM_NOT_AVAILABLE": ITEM_NOT_AVAILABLE,
         "VALUE_NOT_RETRIEVED": VALUE_NOT_RETRIEVED, "ANY_ETAG": ANY_ETAG, "ETAG_IS_THE_SAME": ETAG_IS_THE_SAME,
         "ETAG_HAS_CHANGED": ETAG_HAS_CHANGED, "ALWAYS_RETRIEVE": ALWAYS_RETRIEVE, "NEVER_RETRIEVE": NEVER_RETRIEVE,
         "IF_ETAG_CHANGED": IF_ETAG_CHANGED}
CLIENT_MODULE = cw.__name__


# ---------------------------------------------------------------- describing what was observed

def _sort_key(described: Any) -> str:
    return json.dumps(described, sort_keys=True)


def describe(x: Any) -> Any:
    """A JSON form of ``x`` that is equal for equal observations in both implementations."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    for name, flag in FLAGS.items():
        if x is flag:
            return {"flag": name}
    if isinstance(x, type):
        return {"type": f"{x.__module__}.{x.__qualname__}"}
    if isinstance(x, BaseException):
        return {"exception": type(x).__qualname__, "args": describe(x.args),
                "notes": describe(getattr(x, "__notes__", None))}
    if isinstance(x, SafeStrTuple):
        described: dict[str, Any] = {"strings": list(x.strings)}
        if type(x).__module__ == CLIENT_MODULE:  # a client subclass: its runtime attributes count too
            described["class"] = type(x).__qualname__
            described["attrs"] = describe({k: v for k, v in vars(x).items() if k != "strings"})
        return {"safe_str_tuple": described}
    if isinstance(x, ConditionalOperationResult):
        return {"satisfied": x.condition_was_satisfied, "mutated": x.value_was_mutated,
                "actual_exists": x.actual_etag is not ITEM_NOT_AVAILABLE,
                "resulting_exists": x.resulting_etag is not ITEM_NOT_AVAILABLE, "new_value": describe(x.new_value)}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        fields = x._asdict()  # type: ignore[attr-defined]
        return {"namedtuple": f"{type(x).__module__}.{type(x).__qualname__}", "fields": describe(fields)}
    if isinstance(x, tuple):
        return {"tuple": [describe(i) for i in x]}
    if isinstance(x, list):
        return [describe(i) for i in x]
    if isinstance(x, (set, frozenset)):
        return {type(x).__name__: sorted((describe(i) for i in x), key=_sort_key)}
    if isinstance(x, dict):
        return {"dict": sorted(([describe(k), describe(v)] for k, v in x.items()), key=_sort_key)}
    return {"object": f"{type(x).__module__}.{type(x).__qualname__}", "attrs": describe(getattr(x, "__dict__", {}))}


def outcome(action: Callable[[], Any]) -> Any:
    """What ``action()`` returned, or the type of the exception it raised."""
    try:
        return {"returned": describe(action())}
    except Exception as error:  # the type is the observation
        return {"raised": type(error).__name__}


def keys_of(d: PersiDict) -> list[list[str]]:
    return sorted(list(k) for k in d.keys())


def items_of(d: PersiDict) -> list[Any]:
    return sorted(([list(k), describe(v)] for k, v in d.items()), key=_sort_key)


# ---------------------------------------------------------------- the stores (shared by run and reread)

def value_stores(workdir: Path) -> dict[str, PersiDict]:
    return {fmt: FileDirDict(base_dir=str(workdir / f"values_{fmt}"), serialization_format=fmt)
            for fmt in ("pkl", "json")}


def crash_log(workdir: Path) -> PersiDict:
    root: Any = FileDirDict(base_dir=str(workdir / "log_root"))
    return cw.derived_store(root.get_subdict("crash_history"), serialization_format="json", append_only=True,
                            digest_len=0)


def four_formats(workdir: Path) -> OverlappingMultiDict:
    return OverlappingMultiDict(dict_type=FileDirDict,
                                shared_subdicts_params={"base_dir": str(workdir / "run_history"), "digest_len": 0},
                                json={}, py={"base_class_for_values": str}, txt={"base_class_for_values": str},
                                pkl={})


def write_once_results(workdir: Path) -> WriteOnceDict:
    root: Any = FileDirDict(base_dir=str(workdir / "results_root"), digest_len=0)
    return WriteOnceDict(wrapped_dict=cw.derived_store(root.get_subdict("execution_results"), append_only=True,
                                                       serialization_format="pkl"),
                         p_consistency_checks=0)


def portal_stores(portal: cw.MiniPortal) -> dict[str, PersiDict]:
    stores = {"value_store": portal.value_store, "execution_requests": portal.execution_requests,
              "execution_results": portal.execution_results, "claims": portal.claims,
              "crash_history": portal.crash_history}
    stores.update({f"run_history_{fmt}": getattr(portal.run_history, fmt) for fmt in ("json", "py", "txt", "pkl")})
    return stores


# ---------------------------------------------------------------- run: one function per usage

def public_names(workdir: Path) -> dict[str, Any]:
    names = ["Joker", "KEEP_CURRENT", "replace_unsafe_chars", "SafeStrTuple", "NonEmptySafeStrTuple"]
    return {"present": {name: hasattr(persidict, name) for name in names},
            "keep_current_is_joker": isinstance(KEEP_CURRENT, Joker),
            "replaced": replace_unsafe_chars("fn name/v1.py", "_")}


def addresses(workdir: Path) -> dict[str, Any]:
    addr = cw.ValueAddr(42)
    addr.remember_portal("p1")
    task = cw.TaskAddr("square", "x")
    task.attempts.append(1)
    return {"value_addr": describe(addr), "task_addr": describe(task),
            "hash_is_plain": [hash(addr) == hash(tuple(addr)), hash(task) == hash(tuple(task))],
            "equals_plain": [addr == tuple(addr), tuple(addr) == addr, task == list(task), addr != tuple(task)],
            "pickled": describe(pickle.loads(pickle.dumps(addr))),
            "task_pickled": describe(pickle.loads(pickle.dumps(task))),
            "from_strings": describe(cw.ValueAddr.from_strings(*addr.strings)),
            "rebuilt_equal": cw.ValueAddr.from_strings(*addr.strings) == addr}


def address_keys(workdir: Path) -> dict[str, Any]:
    stores: dict[str, PersiDict[Any]] = {"file_dir": FileDirDict(base_dir=str(workdir / "keys_file_dir")),
              "local": LocalDict(),
              "write_once": WriteOnceDict(wrapped_dict=FileDirDict(base_dir=str(workdir / "keys_write_once"),
                                                                   append_only=True), p_consistency_checks=0)}
    observed = {}
    for name, d in stores.items():
        addr, task = cw.ValueAddr("v"), cw.TaskAddr("f")
        d[addr] = "value"
        d[task] = "task"
        observed[name] = {"by_plain_tuple": d[tuple(addr)], "by_list": d[list(task)],
                          "contains": [addr in d, tuple(task) in d, cw.ValueAddr("other") in d],
                          "keys": keys_of(d), "len": len(d), "get": d.get(task),
                          "rewrite": outcome(partial(d.__setitem__, addr, "value")),
                          "discard": outcome(partial(d.discard, task)),
                          "discard_again": outcome(partial(d.discard, task))}
    return observed


def address_values(workdir: Path) -> dict[str, Any]:
    observed = {}
    for fmt, d in value_stores(workdir).items():
        addr = cw.ValueAddr(7)
        addr.remember_portal("p1")
        task = cw.TaskAddr("f", "a")
        task.attempts.append(3)
        d["addr"] = addr
        d["task"] = task
        d["nested"] = {"result": addr, "args": [task]}
        observed[fmt] = {"read_back": items_of(d), "equal": [d["addr"] == addr, d["task"] == task],
                         "hash_equal": hash(d["addr"]) == hash(addr)}
    return observed


def json_params(workdir: Path) -> dict[str, Any]:
    stores: dict[str, PersiDict[Any]] = {"file_dir": FileDirDict(base_dir=str(workdir / "js_file_dir"),
                                                                   digest_len=0),
              "write_once": WriteOnceDict(wrapped_dict=FileDirDict(base_dir=str(workdir / "js_write_once"),
                                                                   append_only=True), p_consistency_checks=0)}
    observed: dict[str, Any] = {
        "flags_round_trip": {name: loadjs(dumpjs(flag)) is flag for name, flag in FLAGS.items()},
        "flag_params": {name: flag.get_params() for name, flag in FLAGS.items()},
        "class_call_is_singleton": {name: type(flag)() is flag for name, flag in FLAGS.items()}}
    for name, store in stores.items():
        copy = loadjs(dumpjs(store))
        store["k"] = name
        observed[name] = {"same_type": type(copy) is type(store),
                          "same_params": copy.get_params() == store.get_params(),
                          "shares_storage": copy["k"], "equal": copy == store}
    portal = cw.MiniPortal(workdir / "js_portal")
    addr = portal.store_value("hello")
    rebuilt = loadjs(update_jsparams(dumpjs(portal), exact_n_workers=2, max_n_workers=KEEP_CURRENT,
                                     ancestor_process_id=12345))
    observed["portal"] = {"type": type(rebuilt).__qualname__, "max_n_workers": describe(rebuilt.max_n_workers),
                          "exact_n_workers": rebuilt.exact_n_workers,
                          "ancestor_process_id": rebuilt.ancestor_process_id,
                          "same_base_dir": rebuilt.base_dir == portal.base_dir,
                          "sees_value": rebuilt.value_store[addr]}
    return observed


def portal_worker(workdir: Path) -> dict[str, Any]:
    portal = cw.MiniPortal(workdir / "portal")
    calls = [portal.request_square(n) for n in range(1, 6)]
    reports: FileDirDict[Any] = FileDirDict(base_dir=str(workdir / "reports"))
    jsparams = update_jsparams(dumpjs(portal), exact_n_workers=1, max_n_workers=KEEP_CURRENT)
    exit_codes = cw.run_spawned(cw.portal_worker, [(jsparams, dumpjs(reports), "w1")])
    report = reports.get("w1", {})
    return {"exit_codes": exit_codes, "report": describe({k: v for k, v in report.items() if k != "executed"}),
            "executed_all": sorted(report.get("executed", [])) == sorted(list(c) for c in calls),
            "result_addrs": [describe(portal.execution_results[c]) for c in calls],
            "results": [portal.value_store[portal.execution_results[c]] for c in calls],
            "json_result_addrs": [describe(portal.run_history.json[(*c.strings, "result_addr")]) for c in calls],
            "outputs": [portal.run_history.txt[(*c.strings, "output")] for c in calls],
            "records": [describe(portal.run_history.pkl[(*c.strings, "record")]) for c in calls],
            "queue_len": len(portal.execution_requests),
            "random_key_on_empty": describe(portal.execution_requests.random_key())}


def crash_history(workdir: Path) -> dict[str, Any]:
    log: Any = crash_log(workdir)
    first, second = ("2026_01_01", "portal_a_crash"), ("2026_01_01", "portal_b_crash")
    log[first] = cw.crash_record(cw.caught(ZeroDivisionError("division by zero"), note="logged once"))
    cw.wait_until_after(log.timestamp(first))
    log[second] = cw.crash_record(cw.caught(KeyError("missing")))
    return {"len": len(log), "keys": keys_of(log), "first": describe(log[first]),
            "exc_type_is_the_class": log[first]["exc_type"] is ZeroDivisionError,
            "record_type": type(log[first]["record"]) is cw.ExecutionRecord,
            "newest_values": describe(log.newest_values(max_n=1)),
            "newest_keys": [list(k) for k in log.newest_keys(max_n=1)],
            "oldest_keys": [list(k) for k in log.oldest_keys(max_n=1)],
            "timestamps_ordered": log.timestamp(first) < log.timestamp(second),
            "file_layout": os.path.isfile(os.path.join(log.base_dir, *first) + ".json"),
            "rewrite": outcome(lambda: log.__setitem__(first, {})),
            "discard": outcome(lambda: log.discard(first)),
            "get_missing": outcome(lambda: log.get(("2026_01_02", "none"))),
            "day_len": len(log.get_subdict("2026_01_01"))}


def multi_format(workdir: Path) -> dict[str, Any]:
    omd = four_formats(workdir)
    key = ("f", "call1")
    omd.json[key] = cw.crash_record(cw.caught(ValueError("bad input", 3)))
    omd.py[key] = "def f(x):\n    return x\n"
    omd.txt[key] = "output text"
    omd.pkl[key] = {"result": cw.ValueAddr(5)}
    subs = {fmt: getattr(omd, fmt) for fmt in omd.subdicts_names}
    observed: dict[str, Any] = {"names": list(omd.subdicts_names),
                                "keys": {fmt: keys_of(sub) for fmt, sub in subs.items()},
                                "values": {fmt: describe(sub[key]) for fmt, sub in subs.items()},
                                "files": value_files(workdir / "run_history" / "f"),
                                "txt_rejects_non_str": outcome(lambda: omd.txt.__setitem__(("g",), 5)),
                                "item_access": outcome(lambda: omd[key])}
    omd.pkl.clear()
    observed["lens_after_pkl_clear"] = {fmt: len(sub) for fmt, sub in subs.items()}
    return observed


def value_files(folder: Any) -> list[str]:
    """The files in ``folder`` but the store's own layout record (which persidict 0.x never writes)."""
    return sorted(name for name in os.listdir(folder) if name != ".persidict@layout")


def derived_params(workdir: Path) -> dict[str, Any]:
    root: Any = FileDirDict(base_dir=str(workdir / "derived_root"))
    prototype = root.get_subdict("crash_history")
    log = cw.derived_store(prototype, digest_len=0, append_only=True, serialization_format="json")
    text = cw.derived_store(prototype, serialization_format="txt", base_class_for_values=str)
    log["k"] = {"a": 1}
    text["k"] = "hello"
    return {"prototype_dir": os.path.basename(prototype.base_dir),
            "same_base_dir": [log.base_dir == prototype.base_dir, text.base_dir == prototype.base_dir],
            "log": [log.append_only, log.digest_len, log.serialization_format, describe(log.base_class_for_values)],
            "text": [text.append_only, text.digest_len, text.serialization_format,
                     describe(text.base_class_for_values)],
            "files": value_files(prototype.base_dir),
            "prototype_unchanged": [prototype.serialization_format, prototype.digest_len, prototype.append_only],
            "lens": [len(prototype), len(log), len(text)],
            "overwrite_log": outcome(lambda: log.__setitem__("k", {})),
            "text_non_str": outcome(lambda: text.__setitem__("n", 5)),
            "unknown_param": outcome(lambda: cw.derived_store(prototype, no_such_param=1))}


def subdicts(workdir: Path) -> dict[str, Any]:
    roots: dict[str, Any] = {"digest0": FileDirDict(base_dir=str(workdir / "ns0"), digest_len=0),
                                   "digest4": FileDirDict(base_dir=str(workdir / "ns4")),
                                   "local": LocalDict()}
    observed = {}
    for name, root in roots.items():
        sub, deeper = root.get_subdict("ns"), root.get_subdict(("a", "b"))
        sub["k"] = 1
        root["ns", "j"] = 2
        deeper["z"] = 3
        observed[name] = {"root_sees_sub": root["ns", "k"], "sub_sees_root": sub["j"], "deeper": root["a", "b", "z"],
                          "keys": [keys_of(root), keys_of(sub), keys_of(deeper)],
                          "lens": [len(root), len(sub), len(deeper)], "subdicts": sorted(root.subdicts()),
                          "sub_type_same": type(sub) is type(root)}
        if name != "local":
            observed[name]["sub_dir"] = os.path.relpath(sub.base_dir, root.base_dir)
            observed[name]["empty_prefix_same_dir"] = root.get_subdict(()).base_dir == root.base_dir
    return observed


def write_once(workdir: Path) -> dict[str, Any]:
    store = write_once_results(workdir)
    key = cw.ValueAddr(("square", 3))
    store[key] = 9
    with cw.WriteWatcher(store.base_dir) as watcher:
        for _ in range(3000):
            store[key] = 9
    store[key] = 10  # a different value: no consistency checks, so silently ignored
    return {"value": store[key], "len": len(store), "write_events": len(watcher.events),
            "base_dir_forwarded": store.base_dir == store.get_params()["wrapped_dict"].base_dir,
            "discard": outcome(lambda: store.discard(key)),
            "set_item_if": outcome(lambda: store.set_item_if(key, value=9, condition=ANY_ETAG,
                                                             expected_etag=ITEM_NOT_AVAILABLE))}


def dispatch(workdir: Path) -> dict[str, Any]:
    portal = cw.MiniPortal(workdir / "dispatch")
    on_empty = portal.execution_requests.random_key()
    calls = [portal.request_square(n) for n in range(5)]
    picked = portal.execution_requests.random_key()
    executed = cw.drain_requests(portal, "solo")
    late_claim = portal.claims.setdefault_if(calls[0], default_value="late", condition=ETAG_IS_THE_SAME,
                                             expected_etag=ITEM_NOT_AVAILABLE)
    return {"random_key_on_empty": describe(on_empty), "picked_is_a_request": picked in calls,
            "executed_all": sorted(executed) == sorted(list(c) for c in calls), "n_executed": len(executed),
            "queue_len": len(portal.execution_requests),
            "random_key_after": describe(portal.execution_requests.random_key()),
            "late_claim": describe(late_claim), "claims": sorted(portal.claims.values()),
            "results": [portal.value_store[portal.execution_results[c]] for c in calls],
            "timestamps_are_floats": all(isinstance(portal.execution_results.timestamp(c), float) for c in calls)}


def s3_stores(workdir: Path, s3: dict[str, str]) -> dict[str, Any]:
    from persidict import BasicS3Dict, S3Dict

    bucket, prefix = s3["bucket"], s3["root_prefix"]
    basic: Any = BasicS3Dict(bucket_name=bucket, root_prefix=f"{prefix}/basic")
    log = cw.derived_store(basic, append_only=True, serialization_format="json")
    text = cw.derived_store(basic, serialization_format="txt", base_class_for_values=str)
    cached: Any = S3Dict(bucket_name=bucket, root_prefix=f"{prefix}/cached", base_dir=str(workdir / "s3_cache"))
    cached_log = cw.derived_store(cached, digest_len=0, append_only=True, serialization_format="json")
    basic["k"] = cw.ValueAddr(1)
    log["2026_01_01", "crash"] = cw.crash_record(cw.caught(ZeroDivisionError("division by zero")))
    text["k"] = "hello"
    cached["k"] = cw.TaskAddr("f")
    cached_log["2026_01_01", "crash"] = cw.crash_record(cw.caught(KeyError("missing")))
    day = basic.get_subdict("2026_01_01")
    day["x"] = 1
    portal = cw.MiniPortal(cached)
    calls = [portal.request_square(n) for n in range(3)]
    executed = cw.drain_requests(portal, "solo")
    return {"basic": describe(basic["k"]), "log": items_of(log), "text": items_of(text),
            "cached": describe(cached["k"]),
            "cached_log": items_of(cached_log), "keys": [keys_of(d) for d in (basic, log, text, cached, cached_log)],
            "same_prefix": [log.root_prefix == basic.root_prefix, cached_log.root_prefix == cached.root_prefix],
            "cached_log_flags": [cached_log.append_only, cached_log.digest_len, cached_log.serialization_format],
            "log_rewrite": outcome(lambda: log.__setitem__(("2026_01_01", "crash"), {})),
            "basic_has_no_digest_len": outcome(lambda: cw.derived_store(basic, digest_len=0)),
            "subdict": [day["x"], basic["2026_01_01", "x"], keys_of(day)],
            "portal_executed_all": sorted(executed) == sorted(list(c) for c in calls),
            "portal_results": [portal.value_store[portal.execution_results[c]] for c in calls]}


RUN_SECTIONS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "public_names": public_names, "addresses": addresses, "address_keys": address_keys,
    "address_values": address_values, "json_params": json_params, "portal_worker": portal_worker,
    "crash_history": crash_history, "multi_format": multi_format, "derived_params": derived_params,
    "subdicts": subdicts, "write_once": write_once, "dispatch": dispatch}


def run(workdir: Path, s3: dict[str, str] | None) -> dict[str, Any]:
    transcript = {name: section(workdir) for name, section in RUN_SECTIONS.items()}
    if s3:
        transcript["s3"] = s3_stores(workdir, s3)
    return transcript


def reread(workdir: Path) -> dict[str, Any]:
    """What the stores that ``run`` wrote hold, as this implementation reads them."""
    omd = four_formats(workdir)
    return {"values": {fmt: items_of(d) for fmt, d in value_stores(workdir).items()},
            "crash_log": items_of(crash_log(workdir)),
            "multi_format": {fmt: items_of(getattr(omd, fmt)) for fmt in omd.subdicts_names},
            "write_once": items_of(write_once_results(workdir)),
            **{f"portal_{name}": {store_name: items_of(store)
                                  for store_name, store in portal_stores(cw.MiniPortal(workdir / name)).items()}
               for name in ("portal", "dispatch")}}


def json_params_blobs(workdir: Path) -> dict[str, str]:
    """mixinforge JSON of a portal (with KEEP_CURRENT), of a store and of flags, as this implementation writes it."""
    portal = cw.MiniPortal(workdir / "blob_portal")
    portal.store_value("from the writer")
    return {"portal": update_jsparams(dumpjs(portal), exact_n_workers=1, max_n_workers=KEEP_CURRENT),
            "store": dumpjs(portal.value_store),
            "flags": dumpjs([KEEP_CURRENT, DELETE_CURRENT, ITEM_NOT_AVAILABLE, ETAG_IS_THE_SAME, NEVER_RETRIEVE])}


def load_json_params(blobs: dict[str, str]) -> dict[str, Any]:
    """What loading ``json_params_blobs`` (maybe the other implementation's) gives this implementation."""
    portal, store, flags = loadjs(blobs["portal"]), loadjs(blobs["store"]), loadjs(blobs["flags"])
    return {"portal": [type(portal).__qualname__, describe(portal.max_n_workers), portal.exact_n_workers,
                       type(portal.value_store).__name__, items_of(portal.value_store)],
            "store": [type(store).__name__, store.append_only, items_of(store)],
            "flags": [describe(flag) for flag in flags]}


COMMANDS: dict[str, Callable[[Path, dict[str, Any]], Any]] = {
    "run": lambda workdir, spec: run(workdir, spec.get("s3")),
    "reread": lambda workdir, spec: reread(workdir),
    "json_params": lambda workdir, spec: json_params_blobs(workdir),
    "load_json_params": lambda workdir, spec: load_json_params(spec["blobs"]),
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    workdir = Path(spec["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    transcript = COMMANDS[spec["command"]](workdir, spec)
    print(json.dumps({"persidict": importlib.metadata.version("persidict"), "transcript": transcript}))


if __name__ == "__main__":
    warnings.simplefilter("ignore")  # jsonpickle's deprecation notes are not observations
    main()
