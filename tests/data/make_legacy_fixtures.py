"""Write the persidict 0.309.0 fixtures into ``tests/data/persidict-0.309.0/``.

Run it with an interpreter that has the real persidict 0.309.0 (and
``moto[server]`` for the S3 part), never with ours::

    /path/to/venv/bin/python tests/data/make_legacy_fixtures.py

It deletes the fixture folder, then writes with 0.309.0 itself:

- ``local/``: one FileDirDict folder (default digest_len) holding the pkl, json
  and txt corpora side by side, told apart by their extensions;
- ``local-digest0/``: pkl and json with ``digest_len=0``;
- ``local-append-only/``: pkl with ``append_only=True``;
- ``s3/``: every object that BasicS3Dict writes for the pkl, json and txt
  corpora on a moto server, saved as a file whose relative path is the
  object name (0.309.0 writes pkl objects as uncompressed joblib pickles,
  where its folders hold lz4-compressed ones);
- ``MANIFEST.json``: each store's kind, folder, format, constructor parameters
  (``base_dir`` is the folder; S3 tests pick their own bucket) and keys, each
  written as its components joined by ``/`` (never a safe character).

Each store is read back with 0.309.0 and checked against the corpus before
the script ends. Re-running regenerates everything; with the same library
versions the bytes come out the same (the script pins the string hash seed,
which orders sets of str), though lz4/joblib upgrades may change them, and
so may the process: jsonpickle's pandas extension names a DataFrame column's
dtype by a tag that depends on the order in which its process listed pandas'
dtypes (``pd/f`` or ``pd/f64`` for float64). The committed json frames say
``pd/f`` for float64, which our reader must read as float64: keep them.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from legacy_corpus import base_class_for
from legacy_stores import Spec, base_class_name, compare_with_corpus, open_store, problems, write_corpus

REFERENCE_VERSION = "0.309.0"
OUT = Path(__file__).resolve().parent / f"persidict-{REFERENCE_VERSION}"
BUCKET = "legacy-fixtures"
ROOT_PREFIX = "fixtures/"


def _spec(kind: str, folder: str, fmt: str, **params: Any) -> tuple[str, Spec]:
    """A store's manifest entry: where it lives and the parameters it was written with."""
    params["base_class_for_values"] = base_class_name(base_class_for(fmt))
    return f"{folder}-{fmt}", {"kind": kind, "folder": folder, "format": fmt, "params": params}


def local_specs() -> list[tuple[str, Spec]]:
    """The local stores: three formats in one folder, a digest_len=0 pair, an append-only store."""
    return [
        *(_spec("local", "local", fmt) for fmt in ("pkl", "json", "txt")),
        *(_spec("local", "local-digest0", fmt, digest_len=0) for fmt in ("pkl", "json")),
        _spec("local", "local-append-only", "pkl", append_only=True),
    ]


def s3_specs() -> list[tuple[str, Spec]]:
    """The S3 stores: three formats under one root prefix of one bucket."""
    return [_spec("s3", "s3", fmt, bucket_name=BUCKET, root_prefix=ROOT_PREFIX) for fmt in ("pkl", "json", "txt")]


def write_and_check(spec: Spec, **location: Any) -> list[str]:
    """Write the corpus with 0.309.0, read it back with 0.309.0; returns the keys, ``/``-joined."""
    keys = write_corpus(open_store(spec, **location), spec["format"])
    found = problems(compare_with_corpus(open_store(spec, **location), spec["format"], ours=False))
    if found:
        raise SystemExit(f"0.309.0 does not read back its own {spec['format']} store:\n" + "\n".join(found))
    return sorted("/".join(k) for k in keys)


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1, with boto3's environment pointed at it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1")
    try:
        yield url
    finally:
        server.stop()


def download_bucket(bucket: str, target: Path) -> int:
    """Save every object of ``bucket`` as ``target/<object name>``; returns how many."""
    import boto3

    client = boto3.client("s3")
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            path = target / obj["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            count += 1
    return count


def versions() -> dict[str, str]:
    """The versions of the libraries that shaped the fixture bytes."""
    names = ("persidict", "jsonpickle", "joblib", "lz4", "numpy", "pandas")
    return {name: importlib.metadata.version(name) for name in names} | {"python": sys.version.split()[0]}


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # Sets of str are pickled in hash order: pin the seed so that re-runs write the same bytes.
        os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]], {**os.environ, "PYTHONHASHSEED": "0"})
    if importlib.metadata.version("persidict") != REFERENCE_VERSION:
        raise SystemExit(f"run this with persidict=={REFERENCE_VERSION}, not {importlib.metadata.version('persidict')}")
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    stores: dict[str, Spec] = {}
    for name, spec in local_specs():
        spec["keys"] = write_and_check(spec, base_dir=str(OUT / spec["folder"]))
        stores[name] = spec
    with moto_server():
        for name, spec in s3_specs():
            spec["keys"] = write_and_check(spec)
            stores[name] = spec
        objects = download_bucket(BUCKET, OUT / "s3")
    manifest = {"reference": f"persidict {REFERENCE_VERSION}", "generator": "tests/data/make_legacy_fixtures.py",
                "versions": versions(), "stores": stores}
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    files = [p for p in OUT.rglob("*") if p.is_file()]
    print(f"{len(stores)} stores, {objects} S3 objects, {len(files)} files, "
          f"{sum(p.stat().st_size for p in files)} bytes in {OUT}")


if __name__ == "__main__":
    main()
