"""Memory of big GCS and Azure transfers, measured in child processes: ``d[k] = v`` and ``d[k]`` stream.

As in ``test_s3_memory.py``: the child opens the store, warms up (imports,
connections, threads), resets its peak through ``/proc/self/clear_refs``, then
sets or gets one value; ``VmHWM`` minus the resident size at the reset is what
the operation held at its worst.  Through the bytes path a set holds the pickled
value (1x beyond it) and a get the fetched bytes (1x): both bounds fail there
(with ``streams_values`` off).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from typing import Any

import pytest

from persidict import FsspecDict
from tests.servers.azurite import Azurite
from tests.servers.fake_gcs import FakeGCS

MiB = 1024**2
STREAMED = 96 * MiB

pytestmark = [pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's /proc"),
              pytest.mark.timeout(600)]

_CHILD = textwrap.dedent("""
    import json, sys
    from persidict import FsspecDict, Transfers

    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

    url, options, size, operation = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    transfers = Transfers(part_threshold=6 * 2**20, part_size=5 * 2**20, parts_in_flight=2)
    d = FsspecDict(url, storage_options=options, transfers=transfers, timeout=120)
    d["warm"] = bytes(8 * 2**20)  # imports, client, connections, threads
    d["warm"]
    value = bytes(range(256)) * (size // 256) if operation == "set" else None
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    before = status("VmRSS")
    if operation == "set":
        d["big"] = value
    else:
        value = d["big"]
    peak = status("VmHWM") - before
    assert value == bytes(range(256)) * (size // 256)  # after measuring: the comparison copies it
    print(json.dumps({"peak": peak}))
""")


def _peak_of(url: str, options: dict[str, Any], operation: str) -> int:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    done = subprocess.run([sys.executable, "-c", _CHILD, url, json.dumps(options), str(STREAMED), operation],
                          env=env, capture_output=True, text=True, timeout=500, check=True)
    return int(json.loads(done.stdout.strip().splitlines()[-1])["peak"])


def _check(url: str, options: dict[str, Any]) -> None:
    FsspecDict(url, storage_options=options, create_root=True)  # the bucket or container
    set_peak = _peak_of(url, options, "set")  # the value exists before: all of this is beyond it
    get_peak = _peak_of(url, options, "get") - STREAMED  # the value itself is made by the read
    assert set_peak <= STREAMED // 2, f"set held {set_peak / MiB:.1f} MiB beyond a {STREAMED // MiB} MiB value"
    assert get_peak <= STREAMED // 2, f"get held {get_peak / MiB:.1f} MiB beyond a {STREAMED // MiB} MiB value"


def test_a_gcs_set_and_get_hold_at_most_half_the_value_beyond_it(gcs: FakeGCS) -> None:
    _check(f"gs://{gcs.bucket}/{uuid.uuid4().hex[:12]}", gcs.storage_options())


def test_an_azure_set_and_get_hold_at_most_half_the_value_beyond_it(azurite: Azurite) -> None:
    _check(f"az://{azurite.container}/{uuid.uuid4().hex[:12]}", azurite.storage_options())
