"""Data written by persidict 0.309.0 and by us can be read by the other, in pkl, json and txt.

The fixtures in ``tests/data/persidict-0.309.0/`` were written by the real
0.309.0 (``tests/data/make_legacy_fixtures.py``); the values are those of
``tests/data/legacy_corpus.py``. Each case is a format, a backend and a
direction:

- ``ref_to_ours``: our classes open the committed fixtures (a copy of the
  folder, or its objects uploaded to a fresh bucket on the moto server);
- ``ours_to_ref``: our classes write the corpus, then 0.309.0 reads it in its
  own interpreter (``reference_scripts/read_store.py``);
- ``ref_to_ref``: 0.309.0 reads its own fixtures, which checks the fixtures
  and the harness rather than our code;
- ``ours_to_ours``: our classes write the corpus, then our classes read it in
  another interpreter (a json DataFrame's dtype tags must mean the same there).

Every check ends in the same report (``legacy_stores.compare_with_corpus``):
each key listed, each value equal to the corpus, ``len()`` right. Our reader
also checks ``ours_only``: values 0.309.0 writes but itself reads back otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from legacy_corpus import FORMATS, base_class_for, corpus_to_write
from legacy_stores import Report, Spec, base_class_name, compare_with_corpus, open_store, problems, write_corpus

from .buckets import Bucket
from .reference import DATA_DIR, FIXTURES, REFERENCE_VERSION, REPO, run_reference_json

MANIFEST: dict[str, Any] = json.loads((FIXTURES / "MANIFEST.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Backend:
    """Where a case's store lives: our store kind, and the fixture folder 0.309.0 wrote for it."""

    id: str
    kind: str  # a legacy_stores kind: local, s3 or s3_cached
    folder: str  # the MANIFEST folder of the fixtures
    formats: tuple[str, ...]

    @property
    def on_s3(self) -> bool:
        return self.kind != "local"


BACKENDS = (
    Backend("local", "local", "local", FORMATS),
    Backend("local_digest0", "local", "local-digest0", ("pkl", "json")),
    Backend("local_append_only", "local", "local-append-only", ("pkl",)),
    Backend("s3_basic", "s3", "s3", FORMATS),
    Backend("s3_cached", "s3_cached", "s3", FORMATS),
)


@dataclass(frozen=True)
class Case:
    fmt: str
    backend: Backend

    @property
    def spec(self) -> Spec:
        """The fixture store's spec from the manifest, with our kind of store for this backend."""
        entry = MANIFEST["stores"][f"{self.backend.folder}-{self.fmt}"]
        return {"kind": self.backend.kind, "format": self.fmt, "params": dict(entry["params"])}


CASES = [Case(fmt, backend) for backend in BACKENDS for fmt in backend.formats]


def _params(direction: str, *, reference: bool) -> list[Any]:
    marks = [pytest.mark.reference] if reference else []
    return [pytest.param(case, id=f"{case.fmt}-{case.backend.id}-{direction}", marks=marks) for case in CASES]


def _our_location(case: Case, tmp_path: Path, bucket: Bucket | None) -> dict[str, Any]:
    """Where our store of this case lives: a folder, or the test's bucket (plus a cache folder)."""
    if bucket is None:
        return {"base_dir": str(tmp_path / "store")}
    location: dict[str, Any] = {"bucket_name": bucket.name, "storage_options": bucket.storage_options()}
    if case.backend.kind == "s3_cached":
        location["base_dir"] = str(tmp_path / "our-cache")
    return location


def _reference_spec(case: Case, tmp_path: Path, store_dir: Path | None, bucket: Bucket | None) -> Spec:
    """How 0.309.0 opens this case's store: the same kind of store, on ``store_dir`` or the bucket."""
    spec = case.spec
    if bucket is None:
        spec["params"]["base_dir"] = str(store_dir)
        return spec
    spec["params"]["bucket_name"] = bucket.name
    if case.backend.kind == "s3_cached":
        spec["params"]["base_dir"] = str(tmp_path / "reference-cache")
    return spec


def _run_reference_reader(spec: Spec, bucket: Bucket | None) -> Report:
    report: Report = run_reference_json("read_store.py", spec, env=bucket.reference_env() if bucket else None)
    return report


def _assert_holds_corpus(report: Report, reader: str) -> None:
    found = problems(report)
    assert not found, f"{reader} does not read back the corpus:\n" + "\n".join(found)


@pytest.fixture
def case_bucket(request: pytest.FixtureRequest) -> Bucket | None:
    """The test's bucket if its case is on S3, else None (so local cases start no moto server)."""
    case: Case = request.node.callspec.params["case"]
    return request.getfixturevalue("bucket") if case.backend.on_s3 else None


def _place_fixtures(case: Case, fixture_copy: Callable[[str], Path], bucket: Bucket | None) -> Path | None:
    """Put 0.309.0's files where the case's store will look: a private folder copy, or the bucket."""
    if bucket is None:
        return fixture_copy(case.backend.folder)
    bucket.upload_folder(FIXTURES / case.backend.folder)
    return None


@pytest.mark.parametrize("case", _params("ref_to_ours", reference=False))
def test_reference_writes_ours_reads(case: Case, case_bucket: Bucket | None,
                                     fixture_copy: Callable[[str], Path], tmp_path: Path) -> None:
    store_dir = _place_fixtures(case, fixture_copy, case_bucket)
    location = _our_location(case, tmp_path, case_bucket) if store_dir is None else {"base_dir": str(store_dir)}
    _assert_holds_corpus(compare_with_corpus(open_store(case.spec, **location), case.fmt, ours=True), "our store")


@pytest.mark.parametrize("case", _params("ours_to_ref", reference=True))
def test_ours_writes_reference_reads(case: Case, case_bucket: Bucket | None, tmp_path: Path) -> None:
    write_corpus(open_store(case.spec, **_our_location(case, tmp_path, case_bucket)), case.fmt)
    spec = _reference_spec(case, tmp_path, tmp_path / "store", case_bucket)
    _assert_holds_corpus(_run_reference_reader(spec, case_bucket), f"persidict {REFERENCE_VERSION}")


@pytest.mark.parametrize("case", _params("ref_to_ref", reference=True))
def test_reference_reads_its_own_fixtures(case: Case, case_bucket: Bucket | None,
                                          fixture_copy: Callable[[str], Path], tmp_path: Path) -> None:
    """A check of the fixtures and the harness, not of our code: 0.309.0 reads what it wrote."""
    spec = _reference_spec(case, tmp_path, _place_fixtures(case, fixture_copy, case_bucket), case_bucket)
    _assert_holds_corpus(_run_reference_reader(spec, case_bucket), f"persidict {REFERENCE_VERSION}")


_OUR_READER = """
import json, sys
from legacy_stores import compare_with_corpus, open_store
spec = json.loads(sys.argv[1])
print(json.dumps(compare_with_corpus(open_store(spec), spec["format"], ours=True)))
"""


@pytest.mark.parametrize("case", _params("ours_to_ours", reference=False))
def test_ours_writes_ours_reads_in_another_process(case: Case, case_bucket: Bucket | None, tmp_path: Path) -> None:
    location = _our_location(case, tmp_path, case_bucket)
    write_corpus(open_store(case.spec, **location), case.fmt)
    spec = {**case.spec, "params": {**case.spec["params"], **location}}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(DATA_DIR)])}
    result = subprocess.run([sys.executable, "-c", _OUR_READER, json.dumps(spec)], env=env, capture_output=True,
                            text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    _assert_holds_corpus(json.loads(result.stdout), "our store in another process")


BYTE_LEVEL_CASES = [case for case in CASES
                    if case.fmt in ("json", "txt") and case.backend.id in ("local", "local_digest0", "s3_basic")]


@pytest.mark.parametrize("case", [pytest.param(case, id=f"{case.fmt}-{case.backend.id}-bytes")
                                  for case in BYTE_LEVEL_CASES])
def test_ours_writes_the_same_bytes(case: Case, case_bucket: Bucket | None, tmp_path: Path) -> None:
    """Our stores write byte for byte the files (or objects) 0.309.0 wrote, under the same names."""
    write_corpus(open_store(case.spec, **_our_location(case, tmp_path, case_bucket)), case.fmt)
    suffix = "." + case.fmt
    theirs = _files_with_suffix(FIXTURES / case.backend.folder, suffix)
    if case_bucket is None:
        ours = _files_with_suffix(tmp_path / "store", suffix)
    else:
        ours = {name: body for name, body in case_bucket.objects().items() if name.endswith(suffix)}
    assert sorted(ours) == sorted(theirs), "our names differ from 0.309.0's"
    differing = [name for name in sorted(theirs) if not _same_file(ours[name], theirs[name])]
    assert not differing, "\n\n".join(
        f"{name}:\n--- 0.309.0\n{theirs[name]!r}\n--- ours\n{ours[name]!r}" for name in differing)


def _same_file(ours: bytes, theirs: bytes) -> bool:
    """Byte for byte, but for a DataFrame's column dtype tags (below)."""
    if ours == theirs:
        return True
    if b'"py/object": "pandas.DataFrame"' not in theirs:
        return False
    # jsonpickle names a column's dtype by a tag that depends on the order in which the
    # process that wrote it happened to list pandas' dtypes (pd/f is float64 in one process,
    # float32 in another); we write the one tag that names its dtype everywhere (pd/f64).
    our_frame, their_frame = json.loads(ours), json.loads(theirs)
    our_tags = our_frame["meta"].pop("dtypes_rle")
    their_tags = their_frame["meta"].pop("dtypes_rle")
    return our_frame == their_frame and [n for _, n in our_tags] == [n for _, n in their_tags]


def _files_with_suffix(folder: Path, suffix: str) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*" + suffix) if p.is_file()}


# How 0.309.0's pickles start: lz4-compressed joblib in folders, uncompressed joblib (pickle protocol 4) on S3.
PICKLE_HEADERS = {"local": b"\x04\x22\x4d\x18", "s3": b"\x80\x04"}


@pytest.mark.parametrize("store_name", sorted(MANIFEST["stores"]))
def test_fixtures_match_the_corpus(store_name: str) -> None:
    """The committed fixtures hold today's corpus (else re-run make_legacy_fixtures.py) in 0.309.0's formats."""
    entry = MANIFEST["stores"][store_name]
    assert entry["keys"] == sorted("/".join(key) for key in corpus_to_write(entry["format"]))
    assert entry["params"]["base_class_for_values"] == base_class_name(base_class_for(entry["format"]))
    if entry["format"] == "pkl":
        pickles = list((FIXTURES / entry["folder"]).rglob("*.pkl"))
        assert len(pickles) == len(entry["keys"])
        header = PICKLE_HEADERS[entry["kind"]]
        assert all(p.read_bytes().startswith(header) for p in pickles), f"not 0.309.0's pickles ({header!r})"
