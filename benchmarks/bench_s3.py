"""FsspecDict on S3, against a moto server whose requests are counted.

The server (``bench_s3_server.py``) runs in a child process: its WSGI app is
wrapped in a middleware that records every request and can add a fixed
latency before each one, so request counts are exact and the bulk-read test
sees something like a real network round trip.
"""

from __future__ import annotations

import functools
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench_common import VALUE, Row, Settings, best, time_call
from fsspec.asyn import sync

import persidict

__all__ = ["run_s3"]

SECTION = "s3"
BUCKET = "persidict-bench"
STORE = "FsspecDict(s3://, moto)"
RAW = "raw s3fs call_s3"
SERVER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_s3_server.py")

Request = tuple[str, str, str]  # method, path, query


class CountingServer:
    """The parent's handle on the counting moto server: its URL, its request log and its latency."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _control(self, command: str, method: str = "GET") -> bytes:
        """Send one control request to the server and return its body."""
        request = urllib.request.Request(f"{self.url}/__bench__/{command}", method=method)
        with urllib.request.urlopen(request) as response:
            return response.read()  # type: ignore[no-any-return]

    def take(self) -> list[Request]:
        """The requests recorded since the last take."""
        return [(method, path, query) for method, path, query in json.loads(self._control("take"))]

    def stats(self) -> dict[str, float]:
        """The server's CPU seconds so far and its peak of concurrent requests since the last call."""
        return json.loads(self._control("stats"))  # type: ignore[no-any-return]

    def set_latency(self, seconds: float) -> None:
        """Delay every later request by ``seconds`` before moto handles it."""
        self._control(f"latency?seconds={seconds}", method="POST")


@contextmanager
def counting_moto_server() -> Iterator[CountingServer]:
    """Start ``bench_s3_server.py`` on a free loopback port; stop it afterwards."""
    process = subprocess.Popen(
        [sys.executable, SERVER_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(process.stdout.readline())  # type: ignore[union-attr]
        yield CountingServer(f"http://127.0.0.1:{port}")
    finally:
        process.stdin.close()  # type: ignore[union-attr]  # the server exits on end of input
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def open_store(url: str, prefix: str) -> persidict.FsspecDict[Any]:
    """A FsspecDict on the moto server, below ``prefix`` of the benchmark bucket."""
    options = {"endpoint_url": url, "key": "testing", "secret": "testing"}
    return persidict.FsspecDict(f"s3://{BUCKET}/{prefix}", storage_options=options, create_root=True)


def kind_of(request: Request) -> str:
    """A short name for one request: GET, PUT, HEAD, DELETE or LIST."""
    method, _path, query = request
    return "LIST" if method == "GET" and "list-type" in query else method


def describe(requests: list[Request], times: int) -> tuple[float, str]:
    """Average requests per operation and their kinds, e.g. ``(2.0, 'GET+PUT')``."""
    kinds = Counter(kind_of(r) for r in requests)
    label = "+".join(f"{k}" if n == times else f"{n / times:g}x{k}" for k, n in kinds.items())
    return len(requests) / times, label


def count_requests(
    server: CountingServer, setup: Callable[[int], Callable[[], object]], times: int = 3
) -> tuple[float, str]:
    """Requests per call of the action ``setup(i)`` returns (the setup itself is not counted)."""
    requests: list[Request] = []
    for index in range(times):
        action = setup(index)
        server.take()
        action()
        requests.extend(server.take())
    return describe(requests, times)


def _plus_one(value: Any) -> Any:
    """The transformer of the counter benchmark: add one (start at 1)."""
    return 1 if value is persidict.ITEM_NOT_AVAILABLE else value + 1


def request_cases(d: persidict.FsspecDict[Any]) -> list[tuple[str, Callable[[int], Callable[[], object]], float]]:
    """(operation, setup returning the action, target requests per operation) for each counted case."""
    d["present"] = VALUE
    d["counter"] = 0
    same = persidict.ETAG_IS_THE_SAME
    absent = persidict.ITEM_NOT_AVAILABLE

    def set_item_if(i: int) -> Callable[[], object]:
        etag = d.etag("present")
        return lambda: d.set_item_if("present", value=VALUE, condition=same, expected_etag=etag)

    def stale_set_item_if(i: int) -> Callable[[], object]:
        stale = d.etag("present")
        d["present"] = VALUE | {"rewritten": i}  # someone else wrote since
        return lambda: d.set_item_if("present", value=VALUE, condition=same, expected_etag=stale)

    def setdefault_if(i: int) -> Callable[[], object]:
        return lambda: d.setdefault_if(f"new_{i}", default_value=VALUE, condition=same, expected_etag=absent)

    def write_again(i: int) -> Callable[[], object]:  # WriteOnceDict's insert-if-absent on a present key
        never = persidict.NEVER_RETRIEVE
        return lambda: d.setdefault_if("present", default_value=VALUE, condition=same, expected_etag=absent,
                                       retrieve_value=never)

    def discard_if(i: int) -> Callable[[], object]:
        d[f"doomed_{i}"] = VALUE
        etag = d.etag(f"doomed_{i}")
        return lambda: d.discard_if(f"doomed_{i}", condition=same, expected_etag=etag)

    return [
        ("get `d[k]`", lambda i: lambda: d["present"], 1),
        ("set `d[k] = v`", lambda i: lambda: d.__setitem__("present", VALUE), 1),
        ("etag", lambda i: lambda: d.etag("present"), 1),
        ("`in` (present key)", lambda i: lambda: "present" in d, 1),
        ("`in` (absent key)", lambda i: lambda: "absent" in d, 1),
        ("set_item_if (success)", set_item_if, 1),
        ("set_item_if (stale ETag: refused, then the current value)", stale_set_item_if, 2),
        ("setdefault_if (absent key: look, then insert)", setdefault_if, 2),
        ("setdefault_if (present key, NEVER_RETRIEVE)", write_again, 1),
        ("discard_if (known ETag)", discard_if, 1),
        ("transform_item (uncontended)", lambda i: lambda: d.transform_item("counter", transformer=_plus_one), 2),
    ]


def fill(d: persidict.FsspecDict[Any], count: int) -> list[str]:
    """Write ``count`` small values concurrently through s3fs (fast setup, not measured)."""
    keys = [f"k{i:06d}" for i in range(count)]
    data = pickle.dumps(VALUE)
    d.fs.pipe({d.key_to_path(key): data for key in keys})
    return keys


def request_rows(server: CountingServer, settings: Settings) -> list[Row]:
    """Requests per operation, counted at the server."""
    d = open_store(server.url, "requests")
    rows = []
    for operation, setup, target in request_cases(d):
        per_op, kinds = count_requests(server, setup)
        rows.append(_request_row(operation, per_op, kinds, target))
    listed = open_store(server.url, "listing")
    fill(listed, settings.s3_len_keys)
    per_op, kinds = count_requests(server, lambda i: lambda: len(listed), times=1)
    pages = math.ceil(settings.s3_len_keys / 1000)
    rows.append(_request_row(f"len over {settings.s3_len_keys:,} keys", per_op, kinds, pages, "1 LIST per 1,000 keys"))
    return rows


def _request_row(operation: str, per_op: float, kinds: str, target: float, target_text: str = "") -> Row:
    """A row reporting requests per operation against its target."""
    return Row(
        SECTION,
        STORE,
        f"requests: {operation}",
        value=f"{per_op:g} ({kinds})",
        target=f"{target:g}" + (f" ({target_text})" if target_text else ""),
        meets=per_op <= target,
    )


async def _raw_get(fs: Any, key: str) -> Any:
    """One GetObject through s3fs's client, body read and unpickled: the raw limit of a get."""
    response = await fs._call_s3("get_object", Bucket=BUCKET, Key=key)
    body = response["Body"]
    try:
        return pickle.loads(await body.read())
    finally:
        body.close()


async def _raw_put(fs: Any, key: str) -> Any:
    """One PutObject of the pickled value through s3fs's client: the raw limit of a set."""
    return await fs._call_s3("put_object", Bucket=BUCKET, Key=key, Body=pickle.dumps(VALUE))


def latency_free_rows(url: str, settings: Settings) -> list[Row]:
    """Time per small get and set, against one s3fs request done by hand (the raw limit)."""
    d = open_store(url, "timed")
    keys = [f"t{i}" for i in range(settings.s3_timed_ops)]
    raw_keys = [f"raw/t{i}.pkl" for i in range(settings.s3_timed_ops)]
    fs = d.fs

    def store_set() -> None:
        for key in keys:
            d[key] = VALUE

    def store_get() -> None:
        for key in keys:
            d[key]

    def raw_set() -> None:
        for key in raw_keys:
            sync(fs.loop, _raw_put, fs, key)

    def raw_get() -> None:
        for key in raw_keys:
            sync(fs.loop, _raw_get, fs, key)

    work: dict[tuple[str, str], Callable[[], None]] = {
        (STORE, "set"): store_set,
        (RAW, "set"): raw_set,
        (STORE, "get"): store_get,
        (RAW, "get"): raw_get,
    }
    for function in work.values():  # warm-up, and the keys exist before the first timed get
        function()
    samples: dict[tuple[str, str], list[float]] = {name: [] for name in work}
    for _ in range(settings.repeats):
        for name, function in work.items():
            samples[name].append(time_call(function))
    rows = []
    for store in (STORE, RAW):
        for operation in ("set", "get"):
            rate = len(keys) / best(samples[(store, operation)])
            raw_rate = len(keys) / best(samples[(RAW, operation)])
            vs_raw = rate / raw_rate if store == STORE else None
            note = "one request through the same s3fs client, no persidict" if store == RAW else ""
            rows.append(
                Row(SECTION, store, f"{operation} (small value, no added latency)", rate, 1 / rate, vs_raw, note=note)
            )
    return rows


@dataclass
class BulkSample:
    """One timed run on the latency server: wall time, CPU on each side, peak concurrency."""

    seconds: float
    client_cpu: float
    server_cpu: float
    peak_in_flight: int


def timed_on_server(server: CountingServer, function: Callable[[], object]) -> BulkSample:
    """Time ``function`` and record the CPU both processes spent and the server's peak concurrency."""
    before = server.stats()
    cpu = time.process_time()
    seconds = time_call(function)
    client_cpu = time.process_time() - cpu
    after = server.stats()
    return BulkSample(seconds, client_cpu, after["cpu_s"] - before["cpu_s"], int(after["peak_in_flight"]))


def _bulk_note(sample: BulkSample) -> str:
    """The note of a bulk row: CPU spent on each side and peak concurrency."""
    return (
        f"CPU: client {sample.client_cpu:.2f} s, moto {sample.server_cpu:.2f} s; "
        f"peak in flight: {sample.peak_in_flight}"
    )


@dataclass(frozen=True)
class BulkCase:
    """A bulk operation against the same work done one key at a time."""

    name: str
    target: float
    setup: Callable[[], object]  # run before every timed run, not timed
    one_by_one: Callable[[], object]
    bulk: Callable[[], object]


def bulk_cases(d: persidict.FsspecDict[Any], keys: list[str]) -> list[BulkCase]:
    """values(), get_many(), update() and clear() over ``keys``, each against its one-by-one loop."""
    items = {key: VALUE for key in keys}
    refill = functools.partial(fill, d, len(keys))

    def delete_each() -> None:
        for key in keys:
            del d[key]

    def set_each() -> None:
        for key, value in items.items():
            d[key] = value

    return [
        BulkCase("values()", 0.2, refill, lambda: [d[k] for k in keys], lambda: list(d.values())),
        BulkCase("get_many(keys)", 0.25, refill, lambda: [d[k] for k in keys], lambda: d.get_many(keys)),
        BulkCase("update(items)", 0.25, d.clear, set_each, lambda: d.update(items)),
        BulkCase("clear()", 0.25, refill, delete_each, d.clear),
    ]


def bulk_rows(server: CountingServer, settings: Settings) -> list[Row]:
    """Bulk operations against the same work one key at a time, on a server adding latency to every request."""
    n = settings.s3_bulk_keys
    d = open_store(server.url, "bulk")
    keys = fill(d, n)
    per_op, kinds = count_requests(server, lambda i: lambda: list(d.values()), times=1)
    pages = math.ceil(n / 1000)
    rows = [_request_row(f"values() over {n:,} keys", per_op, kinds, n + pages, f"{pages} LIST + {n:,} GET")]
    fill(d, n)
    per_op, kinds = count_requests(server, lambda i: d.clear, times=1)
    rows.append(_request_row(f"clear() of {n:,} keys", per_op, kinds, 2 * pages + 1,
                             "1 LIST + 1 DeleteObjects per 1,000, 1 list of abandoned uploads"))
    ms = int(settings.s3_latency_s * 1000)
    for case in bulk_cases(d, keys):
        single, many = _timed_pair(server, settings, case)
        ratio = many.seconds / single.seconds
        rows.append(Row(SECTION, STORE, f"{case.name} of {n:,} keys, +{ms} ms/request: vs one by one",
                        value=f"{ratio:.3f}x ({many.seconds:.2f} s vs {single.seconds:.2f} s)",
                        target=f"<= {case.target}x", meets=ratio <= case.target, note=_bulk_note(many)))
    return rows


def _timed_pair(server: CountingServer, settings: Settings, case: BulkCase) -> tuple[BulkSample, BulkSample]:
    """The best one-by-one and the best bulk run of a case, with the server's latency on."""
    one_by_one, bulk = [], []
    for _ in range(settings.s3_bulk_repeats):
        for samples, action in ((one_by_one, case.one_by_one), (bulk, case.bulk)):
            case.setup()
            server.set_latency(settings.s3_latency_s)
            try:
                samples.append(timed_on_server(server, action))
            finally:
                server.set_latency(0.0)
    return min(one_by_one, key=lambda s: s.seconds), min(bulk, key=lambda s: s.seconds)


def cached_read_rows(server: CountingServer, settings: Settings) -> list[Row]:
    """A 1 MiB value read through S3Dict's local cache (unchanged in S3) against a plain S3 read."""
    options = {"endpoint_url": server.url, "key": "testing", "secret": "testing"}
    value = os.urandom(1 << 20)
    with tempfile.TemporaryDirectory(prefix="persidict-bench-cache-") as folder:
        cached = persidict.S3Dict(bucket_name=BUCKET, root_prefix="cached", base_dir=folder, storage_options=options)
        plain = open_store(server.url, "cached")
        cached["big"] = value
        reads = {"S3Dict (local cache)": lambda: cached["big"], STORE: lambda: plain["big"]}
        rows = []
        for store, read in reads.items():
            read()  # warm-up; fills the cache
            server.take()
            before = server.stats()["bytes_sent"]
            seconds = best([time_call(read) for _ in range(max(5, settings.repeats))])
            per_read = (server.stats()["bytes_sent"] - before) / max(5, settings.repeats)
            requests = server.take()
            per_op, kinds = describe(requests, max(5, settings.repeats))
            rows.append(
                Row(
                    SECTION,
                    store,
                    "get of a 1 MiB value (unchanged since cached)" if "cache" in store else "get of a 1 MiB value",
                    1 / seconds,
                    seconds,
                    value=f"{per_read / 1024:,.1f} KiB/read",
                    note=f"{per_op:g} request(s) per read: {kinds}",
                )
            )
    return rows


def run_s3(settings: Settings) -> list[Row]:
    """The S3 section of the table."""
    with counting_moto_server() as server:
        rows = request_rows(server, settings)
        rows += latency_free_rows(server.url, settings)
        rows += cached_read_rows(server, settings)
        rows += bulk_rows(server, settings)
    return rows
