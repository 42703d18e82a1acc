"""memoize keys know the code: what an edit of a module recomputes, and what it does not.

The module-edit test runs a real module in fresh interpreters between edits
of its file, as a user re-running a script would; the others load modules
from files too (so their source is real), in this process.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from persidict import LocalDict
from persidict.pipelines.memoize import memoize

REPO = Path(__file__).resolve().parents[2]
WAIT = 120

MODULE = '''
"""A pipeline step whose file the test edits between runs."""
import sys

from persidict import FileDirDict
from persidict.pipelines.memoize import memoize

SCALE = 3


def helper(x):
    # scales its argument
    return x * SCALE


def unrelated(x):
    return x - 1


def body(x):
    """The memoized step."""
    return helper(x) + 1


if __name__ == "__main__":
    f = memoize(FileDirDict(base_dir=sys.argv[1]))(body)
    info = f.call_with_info(5)
    print("computed" if info.computed else "read", info.value)
'''

EDITS = [
    ("a re-run", lambda text: text, "read"),
    ("a comment, a docstring and the layout", lambda text: text.replace(
        '    """The memoized step."""\n    return helper(x) + 1',
        '    """The memoized step, documented better."""\n    # add one\n    return (helper(x)\n            + 1)'),
     "read"),
    ("the body", lambda text: text.replace("            + 1)", "            + 2)"), "computed"),
    ("a helper", lambda text: text.replace("return x * SCALE", "return SCALE * x * 1"), "computed"),
    ("a constant", lambda text: text.replace("SCALE = 3", "SCALE = 4"), "computed"),
    ("an unrelated function", lambda text: text.replace("return x - 1", "return x - 2"), "read"),
]


def _run(module: Path, store: Path) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "PYTHONDONTWRITEBYTECODE": "1"}  # a stale .pyc of an edit made within one second would run old code
    run = subprocess.run([sys.executable, str(module), str(store)], env=env, capture_output=True, text=True,
                         timeout=WAIT, check=True)
    return run.stdout.split()[0]


@pytest.mark.processes
def test_an_edited_module_recomputes_exactly_what_its_edits_change(tmp_path: Path) -> None:
    module, store = tmp_path / "step.py", tmp_path / "store"
    module.write_text(MODULE)
    assert _run(module, store) == "computed"
    outcomes = {}
    for what, edit, _ in EDITS:
        module.write_text(edit(module.read_text()))
        outcomes[what] = _run(module, store)
    assert outcomes == {what: expected for what, _, expected in EDITS}


# --- in this process ------------------------------------------------------------------------


def load(tmp_path: Path, source: str, name: str = "memo_subject") -> ModuleType:
    """A module from ``source``, written to a file of its own (so it has real source) and imported as ``name``.

    Modules compared with each other share one name: a key names the module,
    and the tests compare what the code adds.
    """
    path = tmp_path / uuid.uuid4().hex / f"{name}.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def code_of(function: Any, **options: Any) -> str:
    return memoize(LocalDict(), **options)(function).code_version


def test_two_modules_with_different_functions_of_one_name_never_share_a_key(tmp_path: Path) -> None:
    first = load(tmp_path, "def f(x):\n    return x + 1\n")
    second = load(tmp_path, "def f(x):\n    return x * 100\n")
    same = load(tmp_path, "def f(x):  # the same code as first's\n    return (x +\n            1)\n")
    assert code_of(first.f) != code_of(second.f)
    assert code_of(first.f) == code_of(same.f)


def test_a_rebound_helper_or_constant_changes_the_key_of_a_function_already_memoized(tmp_path: Path) -> None:
    module = load(tmp_path, """
        LIMIT = 3

        def helper(x):
            return x * LIMIT

        def f(x):
            return helper(x)
    """)
    store: LocalDict[Any] = LocalDict()
    f = memoize(store)(module.f)
    first = f.code_version
    module.LIMIT = 4  # as a notebook cell re-run with another constant
    assert f.code_version != first
    module.LIMIT = 3
    assert f.code_version == first
    exec(compile("def helper(x):\n    return -x\n", module.__file__, "exec"), vars(module))  # a redefined helper
    assert f.code_version != first
    assert f(2) == -2 and f.call_with_info(2).computed is False


def test_recursion_and_cycles_between_helpers_are_walked_once(tmp_path: Path) -> None:
    module = load(tmp_path, """
        def even(n):
            return n == 0 or odd(n - 1)

        def odd(n):
            return n != 0 and even(n - 1)

        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)
    """)
    store: LocalDict[Any] = LocalDict()
    assert memoize(store)(module.even)(10) is True
    fact = memoize(store)(module.fact)
    module.fact = fact  # the recursive call goes through the memoized function, as with @memoize
    assert fact(5) == 120 and fact.call_with_info(4).computed is False  # fact(4) was stored on the way
    assert code_of(module.even) == code_of(module.even)


def test_closures_count_what_they_read_and_not_the_state_they_write(tmp_path: Path) -> None:
    module = load(tmp_path, """
        def scaler(k):
            def scale(x):
                return k * x
            return scale

        def counting():
            calls = 0
            def step(x):
                nonlocal calls
                calls += 1
                return x
            return step
    """)
    assert code_of(module.scaler(2), name="scale") != code_of(module.scaler(3), name="scale")
    assert code_of(module.scaler(2), name="scale") == code_of(module.scaler(2), name="scale")
    step = module.counting()
    before = code_of(step, name="step")
    step(1)
    assert code_of(step, name="step") == before


def test_installed_code_counts_by_name_and_methods_count_their_class(tmp_path: Path) -> None:
    numpy_sum = load(tmp_path, "import numpy as np\n\ndef total(x):\n    return np.sum(x)\n")
    math_sum = load(tmp_path, "import math as np\n\ndef total(x):\n    return np.sum(x)\n")
    assert code_of(numpy_sum.total) != code_of(math_sum.total)
    before = load(tmp_path, """
        import dataclasses

        @dataclasses.dataclass(frozen=True)
        class Model:
            k: int

            def predict(self, x):
                return self.helper(x)

            def helper(self, x):
                return self.k * x
    """)
    after = load(tmp_path, textwrap.dedent(Path(before.__file__).read_text()).replace("self.k * x", "self.k + x"))
    assert code_of(before.Model.predict) != code_of(after.Model.predict)  # only the class holds the edit


def test_decorators_of_the_memoized_function_and_memoize_options_do_not_count(tmp_path: Path) -> None:
    plain = load(tmp_path, """
        from persidict import LocalDict
        from persidict.pipelines.memoize import memoize

        @memoize(LocalDict(), lease=5.0)
        def f(x):
            return x
    """)
    other_options = load(tmp_path, """
        from persidict import LocalDict
        from persidict.pipelines.memoize import memoize

        @memoize(LocalDict(), lease=99.0, poll=0.5)
        def f(x):
            return x
    """)
    assert plain.f.code_version == other_options.f.code_version


def test_without_source_the_compiled_code_keys_and_a_warning_says_so(caplog: pytest.LogCaptureFixture) -> None:
    namespace: dict[str, Any] = {"__name__": "generated"}
    exec("def made(x):\n    return x + 1\n", namespace)
    exec("def other(x):\n    return x + 2\n", namespace)
    with caplog.at_level(logging.WARNING, logger="persidict.pipelines.memoize"):
        made = memoize(LocalDict())(namespace["made"])
        assert made(1) == 2 and made.call_with_info(1).computed is False
    assert "no source for generated.made" in caplog.text and "version=" in caplog.text
    assert code_of(namespace["made"]) != code_of(namespace["other"])
    assert code_of(namespace["made"], version=3) == "v=3"


def test_a_version_overrides_the_fingerprint(tmp_path: Path) -> None:
    first = load(tmp_path, "def f(x):\n    return x + 1\n")
    second = load(tmp_path, "def f(x):\n    return x + 2\n")
    assert code_of(first.f, version="2024-06") == code_of(second.f, version="2024-06") == "v=2024-06"


def test_a_file_edited_after_its_module_was_loaded_does_not_key_the_old_code(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loaded = load(tmp_path, "def f(x):\n    return x + 1\n")
    path = Path(loaded.__file__)
    path.write_text("def f(x):\n    return x + 2\n")  # edited in an editor; the module is not reloaded
    with caplog.at_level(logging.WARNING, logger="persidict.pipelines.memoize"):
        stale = code_of(loaded.f)
    fresh = load(tmp_path, path.read_text())
    assert stale != code_of(fresh.f)  # the running x + 1 is not keyed as the file's x + 2
    assert loaded.f(1) == 2 and "no source for memo_subject.f" in caplog.text
