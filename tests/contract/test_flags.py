"""Flags and jokers keep their identity through stores, pickle and copy (docs/concurrency.md#vocabulary)."""

from __future__ import annotations

import copy
import pickle

import pytest

import persidict

FLAGS = {
    "KEEP_CURRENT": persidict.KeepCurrentFlag,
    "DELETE_CURRENT": persidict.DeleteCurrentFlag,
    "ANY_ETAG": persidict.AnyETagFlag,
    "ETAG_IS_THE_SAME": persidict.ETagIsTheSameFlag,
    "ETAG_HAS_CHANGED": persidict.ETagHasChangedFlag,
    "ALWAYS_RETRIEVE": persidict.AlwaysRetrieveFlag,
    "NEVER_RETRIEVE": persidict.NeverRetrieveFlag,
    "IF_ETAG_CHANGED": persidict.IfETagChangedRetrieveFlag,
    "ITEM_NOT_AVAILABLE": persidict.ItemNotAvailableFlag,
    "VALUE_NOT_RETRIEVED": persidict.ValueNotRetrievedFlag,
}


@pytest.mark.parametrize("name", sorted(FLAGS))
def test_flag_identity(name):
    flag = getattr(persidict, name)
    assert flag is FLAGS[name]()
    assert pickle.loads(pickle.dumps(flag)) is flag
    assert copy.copy(flag) is flag
    assert copy.deepcopy(flag) is flag
    assert copy.deepcopy([flag])[0] is flag
    assert bool(flag) is True


def test_sentinels_are_not_jokers():
    assert not isinstance(persidict.ITEM_NOT_AVAILABLE, persidict.Joker)
    assert not isinstance(persidict.VALUE_NOT_RETRIEVED, persidict.Joker)
    assert isinstance(persidict.KEEP_CURRENT, persidict.Joker)
    assert isinstance(persidict.DELETE_CURRENT, persidict.Joker)


@pytest.mark.insert_only
def test_flags_returned_by_a_store_are_the_singletons(d):
    r = d.get_with_etag("missing")
    assert r.new_value is persidict.ITEM_NOT_AVAILABLE
    assert pickle.loads(pickle.dumps(r.new_value)) is persidict.ITEM_NOT_AVAILABLE
