"""The public surface: ``__all__``, importability, flag singletons, version, lazy imports (docs/reference.md)."""

from __future__ import annotations

import copy
import importlib
import importlib.metadata
import pickle
import re
import string
import subprocess
import sys

import pytest

import persidict

# The 50 public names of persidict 0.x (docs/migrating.md), plus our own FsspecDict.
EXPECTED_PUBLIC_NAMES = [
    "ALWAYS_RETRIEVE",
    "ANY_ETAG",
    "AlwaysRetrieveFlag",
    "AnyETagFlag",
    "AppendOnlyDictCached",
    "BackendError",
    "BasicS3Dict",
    "ConcurrencyConflictError",
    "ConditionalOperationResult",
    "DELETE_CURRENT",
    "DeleteCurrentFlag",
    "ETAG_HAS_CHANGED",
    "ETAG_IS_THE_SAME",
    "ETagConditionFlag",
    "ETagHasChangedFlag",
    "ETagIfExists",
    "ETagIsTheSameFlag",
    "ETagValue",
    "EmptyDict",
    "FileDirDict",
    "FsspecDict",
    "IF_ETAG_CHANGED",
    "ITEM_NOT_AVAILABLE",
    "IfETagChangedRetrieveFlag",
    "ItemNotAvailableFlag",
    "Joker",
    "KEEP_CURRENT",
    "KeepCurrentFlag",
    "LocalDict",
    "MutableDictCached",
    "MutationPolicyError",
    "NEVER_RETRIEVE",
    "NeverRetrieveFlag",
    "NonEmptyPersiDictKey",
    "NonEmptySafeStrTuple",
    "OperationResult",
    "OverlappingMultiDict",
    "PersiDict",
    "PersiDictError",
    "PersiDictKey",
    "RetrieveValueFlag",
    "S3Dict",
    "S3Dict_FileDirCached",
    "SafeStrTuple",
    "TransformingFunction",
    "VALUE_NOT_RETRIEVED",
    "ValueNotRetrievedFlag",
    "ValueType",
    "WriteOnceDict",
    "__version__",
    "get_safe_chars",
    "replace_unsafe_chars",
    "BulkOperationError",
    "CopyError",
    "CopyReport",
    "copy_store",
    "memoize",
    "RetryConfig",
    "LeaseLost",
    "NonAtomicStoreError",
    "WorkQueue",
    "Transfers",
    "MissingKeyError",
    "MissingRootError",
    "ValueReplacedError",
]

# Names of persidict 0.x that later issues add. When one lands, move it to the list above.
PENDING_PUBLIC_NAMES: list[str] = []

# Our additions to those 50 names.
OUR_EXTRA_NAMES = [
    "BulkOperationError", "CopyError", "CopyReport", "FsspecDict", "PersiDictError", "RetryConfig", "Transfers",
    "copy_store", "memoize", "LeaseLost", "NonAtomicStoreError", "WorkQueue", "MissingKeyError", "MissingRootError",
    "ValueReplacedError",
]

# In the package namespace but not in __all__, as in persidict 0.x.
NAMESPACE_ONLY = ["SAFE_CHARS_SET", "SAFE_STRING_MAX_LENGTH", "contains_unsafe_chars"]

FLAG_CLASSES = {
    "KEEP_CURRENT": "KeepCurrentFlag",
    "DELETE_CURRENT": "DeleteCurrentFlag",
    "ANY_ETAG": "AnyETagFlag",
    "ETAG_IS_THE_SAME": "ETagIsTheSameFlag",
    "ETAG_HAS_CHANGED": "ETagHasChangedFlag",
    "ALWAYS_RETRIEVE": "AlwaysRetrieveFlag",
    "NEVER_RETRIEVE": "NeverRetrieveFlag",
    "IF_ETAG_CHANGED": "IfETagChangedRetrieveFlag",
    "ITEM_NOT_AVAILABLE": "ItemNotAvailableFlag",
    "VALUE_NOT_RETRIEVED": "ValueNotRetrievedFlag",
}
FLAG_BASES = {
    "KeepCurrentFlag": "Joker",
    "DeleteCurrentFlag": "Joker",
    "AnyETagFlag": "ETagConditionFlag",
    "ETagIsTheSameFlag": "ETagConditionFlag",
    "ETagHasChangedFlag": "ETagConditionFlag",
    "AlwaysRetrieveFlag": "RetrieveValueFlag",
    "NeverRetrieveFlag": "RetrieveValueFlag",
    "IfETagChangedRetrieveFlag": "RetrieveValueFlag",
    "ItemNotAvailableFlag": None,
    "ValueNotRetrievedFlag": None,
}
SEPARATE_BASES = ["Joker", "ItemNotAvailableFlag", "ValueNotRetrievedFlag", "ETagConditionFlag", "RetrieveValueFlag"]


def test_all_is_sorted():
    assert persidict.__all__ == sorted(persidict.__all__)


def test_all_has_no_duplicates():
    assert len(persidict.__all__) == len(set(persidict.__all__))


def test_all_equals_the_expected_names():
    assert sorted(persidict.__all__) == sorted(EXPECTED_PUBLIC_NAMES)


def test_expected_lists_account_for_the_contracts_fifty_names():
    contract_names = set(EXPECTED_PUBLIC_NAMES) - set(OUR_EXTRA_NAMES) | set(PENDING_PUBLIC_NAMES)
    assert len(contract_names) == 50
    assert not set(EXPECTED_PUBLIC_NAMES) & set(PENDING_PUBLIC_NAMES)


def test_pending_names_are_not_exported_yet():
    # Fails as a reminder when a later issue adds one: move it to EXPECTED_PUBLIC_NAMES.
    for name in PENDING_PUBLIC_NAMES:
        assert name not in persidict.__all__


def test_every_name_in_all_is_importable():
    for name in persidict.__all__:
        assert hasattr(persidict, name), name
        namespace: dict = {}
        exec(f"from persidict import {name}", namespace)
        assert namespace[name] is getattr(persidict, name)


def test_star_import_gives_exactly_all():
    namespace: dict = {}
    exec("from persidict import *", namespace)
    namespace.pop("__builtins__", None)
    assert set(namespace) == set(persidict.__all__)


def test_namespace_only_names_exist():
    for name in NAMESPACE_ONLY:
        assert hasattr(persidict, name), name
        assert name not in persidict.__all__
    assert persidict.SAFE_STRING_MAX_LENGTH == 254
    # Letters, digits and the seven characters "( ) _ - ~ . =": 69 in total
    # (docs/concepts.md#safe-characters).
    assert set(persidict.SAFE_CHARS_SET) == set(string.ascii_letters + string.digits + "()_-~.=")


def test_kinds_of_public_names():
    p = persidict
    for exc, base in [
        (p.MutationPolicyError, TypeError),
        (p.ConcurrencyConflictError, RuntimeError),
        (p.BackendError, RuntimeError),
    ]:
        assert issubclass(exc, base)
    for cls in (p.FileDirDict, p.LocalDict, p.EmptyDict, p.FsspecDict):
        assert issubclass(cls, p.PersiDict)
    assert p.FileDirDict[int] is not None  # generic at runtime
    assert p.ETagValue("x") == "x"
    assert p.TransformingFunction[int] is not p.TransformingFunction[str]
    assert isinstance(lambda v: v, p.TransformingFunction)
    assert issubclass(p.NonEmptySafeStrTuple, p.SafeStrTuple)
    assert callable(p.get_safe_chars) and callable(p.replace_unsafe_chars)


# --- flags ---------------------------------------------------------------------------------


@pytest.mark.parametrize("const_name,class_name", sorted(FLAG_CLASSES.items()))
def test_flag_constant_is_the_singleton_of_its_class(const_name, class_name):
    const = getattr(persidict, const_name)
    cls = getattr(persidict, class_name)
    assert type(const) is cls
    assert cls() is const
    assert cls() is cls()
    assert pickle.loads(pickle.dumps(const)) is const
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(const, protocol=protocol)) is const
    assert copy.copy(const) is const
    assert copy.deepcopy(const) is const
    assert copy.deepcopy([const, {"k": const}]) == [const, {"k": const}]
    assert copy.deepcopy([const])[0] is const
    assert bool(const) is True  # no __bool__: truthy


@pytest.mark.parametrize("class_name,base_name", sorted(FLAG_BASES.items()))
def test_flag_hierarchy(class_name, base_name):
    cls = getattr(persidict, class_name)
    for separate in SEPARATE_BASES:
        expected = separate in (class_name, base_name)
        assert issubclass(cls, getattr(persidict, separate)) is expected, (class_name, separate)


def test_separate_bases_do_not_derive_from_each_other():
    for a in SEPARATE_BASES:
        for b in SEPARATE_BASES:
            if a != b:
                assert not issubclass(getattr(persidict, a), getattr(persidict, b)), (a, b)


def test_sentinels_are_not_jokers():
    assert not isinstance(persidict.ITEM_NOT_AVAILABLE, persidict.Joker)
    assert not isinstance(persidict.VALUE_NOT_RETRIEVED, persidict.Joker)
    assert persidict.ITEM_NOT_AVAILABLE is not persidict.VALUE_NOT_RETRIEVED
    assert persidict.ITEM_NOT_AVAILABLE != persidict.VALUE_NOT_RETRIEVED
    assert persidict.KEEP_CURRENT != persidict.DELETE_CURRENT


def test_flag_identity_survives_a_pickle_from_another_process():
    code = (
        "import pickle, sys, persidict\n"
        "sys.stdout.buffer.write(pickle.dumps([persidict.KEEP_CURRENT, persidict.ITEM_NOT_AVAILABLE,"
        " persidict.ETAG_IS_THE_SAME, persidict.NEVER_RETRIEVE]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    loaded = pickle.loads(out)
    assert loaded[0] is persidict.KEEP_CURRENT
    assert loaded[1] is persidict.ITEM_NOT_AVAILABLE
    assert loaded[2] is persidict.ETAG_IS_THE_SAME
    assert loaded[3] is persidict.NEVER_RETRIEVE


# --- version -------------------------------------------------------------------------------


def test_version_is_semver_and_matches_the_metadata():
    version = persidict.__version__
    assert isinstance(version, str)
    assert re.fullmatch(r"\d+\.\d+\.\d+([-+.]?[0-9A-Za-z.+-]+)?", version), version
    assert version == importlib.metadata.version("persidict")


def test_version_falls_back_to_unknown(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    saved = {name: mod for name, mod in sys.modules.items() if name == "persidict" or name.startswith("persidict.")}
    try:
        for name in saved:
            del sys.modules[name]
        fresh = importlib.import_module("persidict")
        assert fresh.__version__ == "unknown"
    finally:
        for name in [n for n in sys.modules if n == "persidict" or n.startswith("persidict.")]:
            del sys.modules[name]
        sys.modules.update(saved)


# --- import cost ---------------------------------------------------------------------------


SCIENTIFIC = ["numpy", "pandas", "pyarrow", "polars"]


def test_import_does_not_load_cloud_sdks():
    heavy = ["s3fs", "gcsfs", "adlfs", "aiohttp", "botocore", "boto3", "aiobotocore", "azure", *SCIENTIFIC]
    code = (
        "import sys, json, persidict\n"
        f"heavy = {heavy!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_import_and_plain_values_do_not_load_numpy_or_pandas(tmp_path):
    """The json codec registers jsonpickle's numpy and pandas handlers only when a value needs them."""
    code = (
        "import sys, json, persidict\n"
        f"d = persidict.FileDirDict(base_dir={str(tmp_path / 'x')!r}, serialization_format='json')\n"
        "d['k'] = {'a': (1, 2.5), 'numpy.': 'pandas.', 'e': ValueError('x')}; d['k']\n"
        f"p = persidict.FileDirDict(base_dir={str(tmp_path / 'x')!r}, serialization_format='pkl')\n"
        "p['k'] = [1]; p['k']\n"
        f"heavy = {SCIENTIFIC!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_opening_local_and_memory_stores_does_not_load_cloud_sdks(tmp_path):
    code = (
        "import sys, json, persidict\n"
        f"d = persidict.FileDirDict(base_dir={str(tmp_path / 'x')!r}); d['k'] = 1\n"
        "m = persidict.LocalDict(); m['k'] = 1\n"
        "f = persidict.FsspecDict('memory://import-cost-probe'); f['k'] = 1\n"
        "heavy = ('s3fs', 'gcsfs', 'adlfs', 'aiohttp', 'botocore')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
