"""Big values on S3: a 256 MiB float64 array set and got on moto, against s3fs ``pipe``/``cat`` of the same bytes.

moto runs in its own process (``bench_s3_server.py``), and every operation in a
fresh child process (the ways interleaved, ``repeats`` times, the fastest
kept), which reports its seconds and its peak resident memory beyond the
value (``VmHWM`` of ``/proc/self/status``, reset through
``/proc/self/clear_refs`` just before the operation; for a get, the value it
got is subtracted).  Three ways, in the same run:

- ``s3fs``: ``pipe_file`` of the array's protocol-5 pickle (made before the
  clock starts) and ``cat_file`` of it: the raw limit;
- ``S3 dict``: ``d[k] = array`` and ``d[k]``, the path a store takes: pickle
  writes into the parts as it goes (``put_stream``) and loads from the first
  answer's body and concurrent ranges (``read_decoded``);
- ``S3 bytes``: the backend's bytes path on the same store (``put`` of the
  whole pickle, ``pickle.loads`` of the whole body read into one buffer), the
  path a store took before it streamed and bulk reads (``values()``) take.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import subprocess
import sys
import time
from typing import Any

from bench_common import Row, Settings

MIB = 1 << 20
WAYS = ("s3fs", "S3 dict", "S3 bytes")
OPERATIONS = ("set", "get")
BUCKET = "bigvalues"
PATH = f"{BUCKET}/v/value.pkl"
TARGETS = {"set": ">= 1.0x s3fs, peak <= 0.5x", "get": ">= 1.0x s3fs, peak <= 0.5x"}


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(field + ":"))


def _prepare(url: str, way: str, operation: str, mib: int) -> tuple[Any, Any]:
    """The client of ``way`` and the value (or payload) a set sends; opened before the clock starts."""
    import numpy as np

    options = {"endpoint_url": url, "key": "testing", "secret": "testing"}
    value: Any = np.arange(mib * MIB // 8, dtype=np.float64) if operation == "set" else None
    if way == "s3fs":
        import s3fs

        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": url}, key="testing", secret="testing",
                               skip_instance_cache=True)
        fs.ls(BUCKET)  # connect
        return fs, (pickle.dumps(value, protocol=5) if operation == "set" else None)
    from persidict import FsspecDict

    d = FsspecDict(f"s3://{BUCKET}/v", storage_options=options, serialization_format="pkl")
    d.get("absent")  # connect
    return d, value


def _operate(client: Any, way: str, operation: str, value: Any) -> Any:
    if way == "s3fs":
        if operation == "set":
            client.pipe_file(PATH, value)
            return None
        return client.cat_file(PATH)
    if way == "S3 dict":
        if operation == "set":
            client["value"] = value
            return None
        return client["value"]
    backend = client._backend
    if operation == "set":
        backend.put(backend.path_for("value.pkl"), pickle.dumps(value, protocol=5))
        return None
    return pickle.loads(backend.read(backend.path_for("value.pkl")))


def measure_in_child(spec: dict[str, Any]) -> dict[str, float]:
    """One operation in this fresh process: seconds, the value's size, peak memory beyond it."""
    client, value = _prepare(spec["url"], spec["way"], spec["operation"], spec["mib"])
    gc.collect()
    before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # VmHWM := VmRSS
    started, cpu = time.perf_counter(), time.process_time()
    result = _operate(client, spec["way"], spec["operation"], value)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = _status("VmHWM") - before
    size = spec["mib"] * MIB
    return {"seconds": seconds, "extra": max(0, peak - (size if spec["operation"] == "get" else 0)),
            "got": 0 if result is None else len(result), "client_cpu": cpu}


def _child(spec: dict[str, Any]) -> dict[str, float]:
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH", "")]))
    env["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)  # freed buffers leave at once: the peak is the peak
    completed = subprocess.run([sys.executable, os.path.abspath(__file__), json.dumps(spec)],
                               env=env, capture_output=True, text=True, timeout=900)
    if completed.returncode:
        raise RuntimeError(f"{spec['way']} {spec['operation']} failed: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_big_values_s3(settings: Settings) -> list[Row]:
    """Set and get rows of each way, with MB/s, the ratio to s3fs and the peak memory multiple."""
    from bench_s3 import counting_moto_server

    mib = 64 if settings.quick else 256
    rows: list[Row] = []
    results: dict[tuple[str, str], dict[str, float]] = {}
    with counting_moto_server() as server:
        _create_bucket(server.url)
        for _ in range(settings.repeats):  # interleaved: every way meets the same load; the fastest is kept
            for way in WAYS:
                for op in OPERATIONS:
                    before = server.stats()["cpu_s"]
                    result = _child({"url": server.url, "way": way, "operation": op, "mib": mib})
                    result["server_cpu"] = server.stats()["cpu_s"] - before  # the child's preparation too
                    if (way, op) not in results or result["seconds"] < results[way, op]["seconds"]:
                        results[way, op] = result
    for way in WAYS:
        for op in OPERATIONS:
            result, raw = results[way, op], results["s3fs", op]
            rate = mib * MIB / result["seconds"] / 1e6
            ratio = raw["seconds"] / result["seconds"]
            multiple = result["extra"] / (mib * MIB)
            rows.append(Row(section="bigvalues_s3", store=f"{way} ({mib} MiB array)", operation=op,
                            value=f"{rate:.0f} MB/s, peak +{multiple:.2f}x", vs_raw=ratio if way != "s3fs" else None,
                            target=TARGETS[op] if way == "S3 dict" else "",
                            meets=(ratio >= 1.0 and multiple <= 0.5) if way == "S3 dict" else None,
                            note=f"CPU: client {result['client_cpu']:.2f} s, moto {result['server_cpu']:.2f} s "
                                 f"of {result['seconds']:.2f} s"))
    return rows


def _create_bucket(url: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket=BUCKET)


if __name__ == "__main__":
    print(json.dumps(measure_in_child(json.loads(sys.argv[1]))))
