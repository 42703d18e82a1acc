"""Memory of big S3 transfers, measured in a child process: bulk reads within their byte budget.

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
