"""Memory of big S3 transfers, measured in child processes: streamed sets and gets, bulk reads.

The child opens the store, warms up (imports, connections, threads), resets
its peak through ``/proc/self/clear_refs`` and then reads; ``VmHWM`` minus the
resident size at the reset is what the read held at its worst.  glibc is told
to map every large block on its own (``MALLOC_MMAP_THRESHOLD_``), so a freed
value leaves the process at once instead of lingering in the heap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from persidict import FsspecDict, Transfers

from ..servers.moto_s3 import MotoS3

MiB = 1024**2
VALUES, VALUE = 24, 4 * MiB
BUDGET = 16 * MiB
SLACK = 6 * MiB
"""Room for what is not a value: response chunks, thread stacks, the interpreter's own growth."""

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's /proc")

_CHILD = textwrap.dedent("""
    import json, sys
    from persidict import FsspecDict, Transfers

    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

    options = {"endpoint_url": sys.argv[1], "key": "testing", "secret": "testing"}
    d = FsspecDict(sys.argv[2], storage_options=options, transfers=Transfers(read_budget=int(sys.argv[3])))
    for value in d.get_many(["k0", "k1"]):  # warm up: imports, the client, connections, threads
        del value
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    before = status("VmRSS")
    count = 0
    for value in d.values():
        count += 1
        del value
    print(json.dumps({"count": count, "peak": status("VmHWM") - before}))
""")


def _peak_of_iterating(s3: MotoS3, url: str) -> dict[str, Any]:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    done = subprocess.run([sys.executable, "-c", _CHILD, s3.url, url, str(BUDGET)], env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_iterating_big_values_holds_the_budget_plus_one_value(moto_s3: MotoS3) -> None:
    moto_s3.reset()
    url = f"s3://{moto_s3.new_bucket_name()}/root"
    d = FsspecDict(url, storage_options=moto_s3.storage_options(), transfers=Transfers(read_budget=BUDGET))
    d.update({f"k{i}": bytes([i]) * VALUE for i in range(VALUES)})
    measured = _peak_of_iterating(moto_s3, url)
    assert measured["count"] == VALUES
    assert measured["peak"] < BUDGET + VALUE + SLACK, f"{measured['peak'] / MiB:.1f} MiB held"


_STREAM_CHILD = textwrap.dedent("""
    import json, pickle, sys
    from persidict import FsspecDict, Transfers

    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

    class Pickled:  # what the streaming hooks hand a backend (their Payload and Decoder)
        def __init__(self, value=None):
            self.value = value
        def starting(self):
            pass
        def write_to(self, file):
            pickle.dump(self.value, file, protocol=5)
        def from_file(self, file):
            return pickle.load(file)

    options = {"endpoint_url": sys.argv[1], "key": "testing", "secret": "testing"}
    transfers = Transfers(part_threshold=6 * 2**20, part_size=5 * 2**20, parts_in_flight=2)
    backend = FsspecDict(sys.argv[2], storage_options=options, transfers=transfers)._backend
    backend.put_stream(backend.path_for("warm.pkl"), Pickled(bytes(8 * 2**20)))  # imports, client, threads
    backend.read_decoded(backend.path_for("warm.pkl"), Pickled())
    value = bytes(range(256)) * (int(sys.argv[3]) // 256) if sys.argv[4] == "set" else None
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    before = status("VmRSS")
    if sys.argv[4] == "set":
        backend.put_stream(backend.path_for("big.pkl"), Pickled(value))
    else:
        value, _ = backend.read_decoded(backend.path_for("big.pkl"), Pickled())
    peak = status("VmHWM") - before
    assert value == bytes(range(256)) * (int(sys.argv[3]) // 256)  # after measuring: the comparison copies it
    print(json.dumps({"peak": peak}))
""")

STREAMED = 96 * MiB


def _peak_of(s3: MotoS3, url: str, operation: str) -> int:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    done = subprocess.run([sys.executable, "-c", _STREAM_CHILD, s3.url, url, str(STREAMED), operation], env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return int(json.loads(done.stdout.strip().splitlines()[-1])["peak"])


def test_a_streamed_set_and_get_hold_at_most_half_the_value_beyond_it(moto_s3: MotoS3) -> None:
    moto_s3.reset()
    url = f"s3://{moto_s3.new_bucket_name()}/root"
    FsspecDict(url, storage_options=moto_s3.storage_options(), create_root=True)  # the bucket
    set_peak = _peak_of(moto_s3, url, "set")  # the value exists before: all of this is beyond it
    get_peak = _peak_of(moto_s3, url, "get") - STREAMED  # the value itself is made by the read
    assert set_peak <= STREAMED // 2, f"set held {set_peak / MiB:.1f} MiB beyond a {STREAMED // MiB} MiB value"
    assert get_peak <= STREAMED // 2, f"get held {get_peak / MiB:.1f} MiB beyond a {STREAMED // MiB} MiB value"
