"""The memory one big ``d[k] = v`` or ``d[k]`` holds, measured in a child process.

The child warms a store up (imports, client, connections, threads) at
``warm_url``, resets its peak through ``/proc/self/clear_refs``, then sets or
gets one value of ``size`` bytes at ``url`` (whose bucket may not exist yet);
``VmHWM`` minus the resident size at the reset is what the operation held at
its worst.  Through the bytes path a set holds the pickled value (1x beyond
it) and a get the fetched bytes (1x): streamed, both stay within half of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

MEASURABLE = os.path.exists("/proc/self/clear_refs")
"""Whether this system can reset a process's peak memory (Linux)."""

_MiB = 1024**2

_CHILD = textwrap.dedent("""
    import json, sys
    from persidict import FsspecDict, Transfers

    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

    warm_url, url, options, size, operation = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), \\
        sys.argv[5]
    transfers = Transfers(part_threshold=6 * 2**20, part_size=5 * 2**20, parts_in_flight=2)
    warm = FsspecDict(warm_url, storage_options=options, transfers=transfers, timeout=120)
    warm["warm"] = bytes(8 * 2**20)  # imports, the client, connections, threads
    assert len(warm["warm"]) == 8 * 2**20
    d = FsspecDict(url, storage_options=options, transfers=transfers, timeout=120)  # its bucket may not exist yet
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


def peak_of(warm_url: str, url: str, options: dict[str, Any], size: int, operation: str) -> int:
    """Bytes the child's ``operation`` (``"set"`` or ``"get"``) of a ``size``-byte value at ``url`` held at its peak."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}  # a freed block leaves the process at once
    done = subprocess.run([sys.executable, "-c", _CHILD, warm_url, url, json.dumps(options), str(size), operation],
                          env=env, capture_output=True, text=True, timeout=500, check=True)
    return int(json.loads(done.stdout.strip().splitlines()[-1])["peak"])


def check_streamed(warm_url: str, url: str, options: dict[str, Any], size: int) -> None:
    """A set, then a get, of a ``size``-byte value at ``url`` each hold at most half of it beyond it."""
    set_peak = peak_of(warm_url, url, options, size, "set")  # the value exists before: all of this is beyond it
    get_peak = peak_of(warm_url, url, options, size, "get") - size  # the value itself is made by the read
    assert set_peak <= size // 2, f"d[k] = v held {set_peak / _MiB:.1f} MiB beyond a {size // _MiB} MiB value"
    assert get_peak <= size // 2, f"d[k] held {get_peak / _MiB:.1f} MiB beyond a {size // _MiB} MiB value"
