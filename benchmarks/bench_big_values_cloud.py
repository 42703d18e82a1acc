"""Big values on GCS and Azure: a float64 array set and got, against the raw fsspec ``pipe``/``cat`` of its bytes.

GCS runs on fake-gcs-server, Azure on Azurite (the test servers of
``tests/servers``), each operation in a fresh child process (the ways
interleaved, ``repeats`` times, the fastest kept), which reports its seconds
and its peak resident memory beyond the value, measured as in
``bench_big_values_s3``.  Two ways per cloud, in the same run:

- ``gcsfs`` / ``adlfs``: ``pipe_file`` of the array's protocol-5 pickle (made
  before the clock starts) and ``cat_file`` of it: the raw limit;
- ``GCS dict`` / ``Azure dict``: ``d[k] = array`` and ``d[k]``, streamed: the
  array is pickled into the chunks of a resumable upload (GCS) or staged
  blocks (Azure) as they fill past ``part_threshold`` (64 MiB), and unpickled
  from the first answer and concurrent ranges (``part_reads``).

Emulators on one shared machine: the ratios matter, not the MB/s.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import subprocess
import sys
import time
from contextlib import ExitStack
from typing import Any

from bench_big_values_s3 import _status
from bench_common import Row, Settings

MIB = 1 << 20
WAYS = {"gcs": ("gcsfs", "GCS dict"), "azure": ("adlfs", "Azure dict")}
OPERATIONS = ("set", "get")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _client(spec: dict[str, Any]) -> tuple[Any, str]:
    """The client of ``spec``'s way, connected, and the path (or key) it writes; made before the clock starts."""
    from persidict import FsspecDict

    raw = spec["way"] in ("gcsfs", "adlfs")
    if spec["cloud"] == "gcs":
        import gcsfs

        options = {**spec["options"], "skip_instance_cache": True}
        if raw:
            fs = gcsfs.GCSFileSystem(**options)
            fs.ls(spec["root"])
            return fs, f"{spec['root']}/raw/value.pkl"
        d: Any = FsspecDict(f"gs://{spec['root']}/v", storage_options=options)
    else:
        import adlfs

        if raw:
            fs = adlfs.AzureBlobFileSystem(**spec["options"], skip_instance_cache=True)
            fs.ls(spec["root"])
            return fs, f"{spec['root']}/raw/value.pkl"
        d = FsspecDict(f"az://{spec['root']}/v", storage_options=spec["options"])
    d.get("absent")  # connect
    return d, "value"


def measure_in_child(spec: dict[str, Any]) -> dict[str, float]:
    """One operation in this fresh process: seconds and peak memory beyond the value."""
    import numpy as np

    client, where = _client(spec)
    raw = spec["way"] in ("gcsfs", "adlfs")
    value: Any = np.arange(spec["mib"] * MIB // 8, dtype=np.float64) if spec["operation"] == "set" else None
    if raw and value is not None:
        value = pickle.dumps(value, protocol=5)
    gc.collect()
    before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # VmHWM := VmRSS
    started = time.perf_counter()
    if spec["operation"] == "set":
        client.pipe_file(where, value) if raw else client.__setitem__(where, value)
    else:
        value = client.cat_file(where) if raw else client[where]
    seconds = time.perf_counter() - started
    peak = _status("VmHWM") - before
    size = spec["mib"] * MIB
    return {"seconds": seconds, "extra": max(0, peak - (size if spec["operation"] == "get" else 0))}


def _child(spec: dict[str, Any]) -> dict[str, float]:
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, REPO, env.get("PYTHONPATH", "")]))
    env["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)  # freed buffers leave at once: the peak is the peak
    env["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"  # see tests/servers/fake_gcs.py
    completed = subprocess.run([sys.executable, os.path.abspath(__file__), json.dumps(spec)],
                               env=env, capture_output=True, text=True, timeout=900)
    if completed.returncode:
        raise RuntimeError(f"{spec['way']} {spec['operation']} failed: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _servers(stack: ExitStack) -> dict[str, dict[str, Any]]:
    """Start both emulators: each cloud's storage options and root (bucket or container)."""
    sys.path.insert(0, REPO)
    from tests.servers.azurite import running_azurite
    from tests.servers.fake_gcs import running_fake_gcs

    gcs = stack.enter_context(running_fake_gcs())
    azure = stack.enter_context(running_azurite())
    import adlfs

    adlfs.AzureBlobFileSystem(**azure.storage_options()).mkdir("bigvalues")
    return {"gcs": {"options": gcs.storage_options(), "root": gcs.bucket},
            "azure": {"options": azure.storage_options(), "root": "bigvalues"}}


def run_big_values_cloud(settings: Settings) -> list[Row]:
    """Set and get rows of each way, with MB/s, the ratio to the raw fsspec call and the peak memory multiple."""
    mib = 64 if settings.quick else settings.big_mib
    results: dict[tuple[str, str], dict[str, float]] = {}
    with ExitStack() as stack:
        clouds = _servers(stack)
        for _ in range(settings.repeats):  # interleaved: every way meets the same load; the fastest is kept
            for cloud, ways in WAYS.items():
                for way in ways:
                    for op in OPERATIONS:
                        result = _child({**clouds[cloud], "cloud": cloud, "way": way, "operation": op, "mib": mib})
                        if (way, op) not in results or result["seconds"] < results[way, op]["seconds"]:
                            results[way, op] = result
    rows: list[Row] = []
    for raw_way, way in WAYS.values():
        for name in (raw_way, way):
            for op in OPERATIONS:
                result, raw = results[name, op], results[raw_way, op]
                rows.append(Row(section="bigvalues_cloud", store=f"{name} ({mib} MiB array)", operation=op,
                                value=f"{mib * MIB / result['seconds'] / 1e6:.0f} MB/s, "
                                      f"peak +{result['extra'] / (mib * MIB):.2f}x",
                                vs_raw=raw["seconds"] / result["seconds"] if name != raw_way else None))
    return rows


if __name__ == "__main__":
    print(json.dumps(measure_in_child(json.loads(sys.argv[1]))))
