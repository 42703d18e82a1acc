"""A worker process for test_local_races.py: one FileDirDict, one role, a stdin barrier.

Usage: ``python _race_worker.py ROLE JSON_ARGS``. The worker opens the store,
prints ``ready``, then waits for a line on stdin before each round, so that
the parent can release every worker at the same moment. Each round's result
is printed as one JSON line. A worker never imports anything from the tests.
"""

from __future__ import annotations

import json
import sys
import time


def _wait_for_go() -> bool:
    line = sys.stdin.readline()
    return line.strip() == "go"


def _emit(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _open(args: dict) -> object:
    from persidict import FileDirDict

    # fsync=False: these races are about atomicity between processes, not
    # about surviving a power loss, and fsync would only slow them down.
    return FileDirDict(base_dir=args["base_dir"], fsync=False)


def role_increment(d, args: dict) -> None:
    from persidict import ITEM_NOT_AVAILABLE

    calls = 0

    def increment(v):
        nonlocal calls
        calls += 1
        return 1 if v is ITEM_NOT_AVAILABLE else v + 1

    if args.get("short_backoff"):
        # transform_item backs off up to 1 s per conflict (docs/concurrency.md#transform-item);
        # the count's exactness does not depend on how long it waits.
        real_sleep = time.sleep
        time.sleep = lambda s: real_sleep(min(s, 0.002))
    _wait_for_go()
    for _ in range(args["n"]):
        d.transform_item(args["key"], transformer=increment, n_retries=None)
    _emit({"done": args["n"], "transformer_calls": calls})


def role_insert_if_absent(d, args: dict) -> None:
    from persidict import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE

    for key in args["keys"]:
        if not _wait_for_go():
            return
        r = d.setdefault_if(
            key,
            default_value=args["worker_id"],
            condition=ETAG_IS_THE_SAME,
            expected_etag=ITEM_NOT_AVAILABLE,
        )
        _emit({"key": key, "satisfied": r.condition_was_satisfied, "mutated": r.value_was_mutated})


def role_cas(d, args: dict) -> None:
    from persidict import ETAG_IS_THE_SAME

    successes = failures = 0
    _wait_for_go()
    while successes < args["n"]:
        current = d.get_with_etag(args["key"])
        r = d.set_item_if(
            args["key"],
            value=current.new_value + 1,
            condition=ETAG_IS_THE_SAME,
            expected_etag=current.actual_etag,
        )
        if r.condition_was_satisfied:
            successes += 1
        else:
            failures += 1
    _emit({"successes": successes, "failures": failures})


def _patterns(args: dict) -> list[bytes]:
    return [bytes([ord("A")]) * args["size_a"], bytes([ord("B")]) * args["size_b"]]


def role_writer(d, args: dict) -> None:
    patterns = _patterns(args)
    written = []
    _wait_for_go()
    deadline = time.monotonic() + args["seconds"]
    i = 0
    while time.monotonic() < deadline:
        which = i % 2
        d[args["key"]] = patterns[which]
        written.append([d.etag(args["key"]), which])  # the only writer: the ETag is ours
        i += 1
    _emit({"written": written})


def role_reader(d, args: dict) -> None:
    patterns = _patterns(args)
    lengths = {len(p): n for n, p in enumerate(patterns)}
    reads = bad = 0
    pairs = []
    _wait_for_go()
    deadline = time.monotonic() + args["seconds"]
    while time.monotonic() < deadline:
        if reads % 2:
            r = d.get_with_etag(args["key"])
            value, etag = r.new_value, r.actual_etag
        else:
            value, etag = d[args["key"]], None
        reads += 1
        which = lengths.get(len(value)) if isinstance(value, bytes) else None
        if which is None or value != patterns[which]:
            bad += 1
            continue
        if etag is not None:
            pairs.append([etag, which])
    _emit({"reads": reads, "bad": bad, "pairs": pairs})


def role_churn(d, args: dict) -> None:
    """Create and delete unique keys in a shared folder, which each delete may prune while others create in it.

    Every tenth value is also written to a key that stays (``kept``), outside the churned folder.
    """
    kept, bad = [], 0
    _wait_for_go()
    for i in range(args["rounds"]):
        key = ("shared", "churned", f"w{args['worker_id']}_{i}", "v")
        d[key] = i
        if d[key] != i:
            bad += 1
        del d[key]
        if i % 10 == 0:
            kept_key = ("kept", f"w{args['worker_id']}_{i}")
            d[kept_key] = i
            kept.append([list(kept_key), i])
    _emit({"kept": kept, "bad": bad})


ROLES = {
    "increment": role_increment,
    "insert_if_absent": role_insert_if_absent,
    "cas": role_cas,
    "writer": role_writer,
    "reader": role_reader,
    "churn": role_churn,
}


def main() -> None:
    role, raw = sys.argv[1], sys.argv[2]
    args = json.loads(raw)
    d = _open(args)
    _emit("ready")
    ROLES[role](d, args)


if __name__ == "__main__":
    main()
