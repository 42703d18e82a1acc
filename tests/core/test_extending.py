"""The extension example of docs/architecture.md#extending, run as written: a layer of ten lines that no
public method of the dict can go around."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from persidict import FileDirDict

DOCS = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


@pytest.fixture(scope="module")
def capped() -> dict[str, Any]:
    """The names the page's example defines."""
    block = re.search(r"## Adding a backend or a layer.*?```python\n(.*?)```", DOCS.read_text(), re.S)
    assert block is not None
    namespace: dict[str, Any] = {}
    exec(compile(block.group(1), str(DOCS), "exec"), namespace)
    return namespace


def test_every_method_meets_the_layer(capped: dict[str, Any], tmp_path: Path) -> None:
    d = capped["SizeCappedDict"](wrapped_dict=FileDirDict(tmp_path), max_items=3)
    d["ok"] = [1, 2, 3]
    for write in (lambda: d.__setitem__("k", [1] * 4), lambda: d.update({"k": [1] * 4}),
                  lambda: d.setdefault("k", [1] * 4), lambda: d.transform_item("ok", transformer=lambda v: v * 2)):
        with pytest.raises(TypeError, match="at most 3"):
            write()
    assert d["ok"] == [1, 2, 3] and "k" not in d


def test_params_pickles_and_subdicts_come_from_the_settings(capped: dict[str, Any], tmp_path: Path) -> None:
    d = capped["SizeCappedDict"](wrapped_dict=FileDirDict(tmp_path), max_items=3)
    sub = d.get_subdict("a")
    with pytest.raises(TypeError, match="at most 3"):
        sub["k"] = [1] * 4
    sub["k"] = [1]
    assert d["a", "k"] == [1] and sub.get_params()["max_items"] == 3
    assert "max_items=3" in repr(d)
    pickled = pickle.dumps(d.get_params()["wrapped_dict"])
    assert pickle.loads(pickled)["a", "k"] == [1]
