"""``python -m persidict demo`` and the local S3 server it uses (``persidict.testing.local_s3``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest
import requests

from persidict import FsspecDict
from persidict.testing import LocalS3, local_s3

from .test_cli import TIMEOUT, ok


@pytest.fixture(scope="module")
def demo() -> str:
    """What the demo prints (run once for the module)."""
    return ok("demo")


def test_the_demo_shows_memoize_with_an_instant_second_call(demo: str) -> None:
    assert ">>> @memoize(cache)\n... def slow_square(x):" in demo
    assert demo.count(">>> slow_square(12)\n144\n") == 2  # on the folder, then on S3
    assert demo.count(">>> slow_square(12)  # the same arguments: read from the store, not computed\n144\n") == 2
    assert len(re.findall(r"^first call: \d+\.\d\d s$", demo, re.MULTILINE)) == 2
    assert len(re.findall(r"^second call: \d+\.\d\d s$", demo, re.MULTILINE)) == 2


def test_the_demo_shows_a_pool_sharing_one_store(demo: str) -> None:
    assert ">>> with ProcessPoolExecutor(max_workers=4) as pool:" in demo
    assert "...         future.result()  # a worker's exception is raised here, not lost" in demo
    assert demo.count("(8, [0, 1, 4, 9, 16, 25, 36, 49])") == 2  # every worker's write, every call counted


def test_the_demo_shows_the_command_line_with_a_progress_bar(demo: str) -> None:
    folder = re.search(r"^'(/.*persidict-demo-[^']+)'$", demo, re.MULTILINE)
    assert folder is not None
    listing = "calls\n" + "".join(f"squares/{i}\n" for i in range(8))
    assert f"$ persidict ls {folder[1]}/results\n{listing}" in demo
    copied = re.search(rf"\$ persidict cp {folder[1]}/results {folder[1]}/copy --progress\n(.*)\n(.*)\n", demo)
    assert copied is not None
    assert copied[1].startswith("copying: 100%") and "9/9" in copied[1]
    assert copied[2] == "copied 9, skipped 0, failed 0"


def test_the_demo_runs_the_same_code_on_s3_and_names_the_url(demo: str) -> None:
    endpoint = re.search(r"^'(http://127\.0\.0\.1:\d+)'$", demo, re.MULTILINE)
    assert endpoint is not None
    assert ">>> s3 = local_s3()" in demo
    assert '>>> cache = FsspecDict("s3://persidict-demo/cache", storage_options=s3.storage_options)' in demo
    assert f"the S3 URLs used: s3://persidict-demo/cache and s3://persidict-demo/results at {endpoint[1]}" in demo
    listing = "calls\n" + "".join(f"squares/{i}\n" for i in range(8))
    assert f"$ persidict ls s3://persidict-demo/results -o endpoint_url={endpoint[1]}" in demo
    assert demo.count(listing) == 2


def test_the_demo_leaves_no_folder_behind(demo: str) -> None:
    folder = re.search(r"^'(/.*persidict-demo-[^']+)'$", demo, re.MULTILINE)
    assert folder is not None
    assert not os.path.exists(folder[1])


# --- local_s3 -----------------------------------------------------------------------------------------
def test_local_s3_serves_a_store_until_stopped() -> None:
    with local_s3() as s3:
        assert isinstance(s3, LocalS3) and s3.endpoint_url.startswith("http://127.0.0.1:")
        store: FsspecDict[Any] = FsspecDict("s3://local-s3-test/runs", storage_options=s3.storage_options)
        store["a", "b"] = 1
        assert store["a", "b"] == 1 and len(store) == 1
        endpoint = s3.endpoint_url
    with pytest.raises(requests.ConnectionError):
        requests.get(endpoint, timeout=10)


_WITHOUT_MOTO = """
import sys
sys.modules["moto"] = None  # as if moto were not installed
from persidict.testing import local_s3
try:
    local_s3()
except ImportError as exc:
    print(exc)
"""


def test_local_s3_says_what_to_install_without_moto() -> None:
    run = subprocess.run([sys.executable, "-c", _WITHOUT_MOTO], capture_output=True, text=True, timeout=TIMEOUT,
                         check=True)
    assert run.stdout == ("persidict.testing.local_s3() runs moto's S3 server, which needs packages that are not "
                          "installed (moto): pip install \"moto[server]\" \"persidict[aws]\" (both are in "
                          "persidict[dev])\n")
