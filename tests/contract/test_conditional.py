"""ETag-conditional operations: every cell of the truth tables (docs/concurrency.md#truth-tables)."""

from __future__ import annotations

import pytest

from persidict import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    DELETE_CURRENT,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
    IF_ETAG_CHANGED,
    KEEP_CURRENT,
    NEVER_RETRIEVE,
    ConditionalOperationResult,
)

from ..conftest import storage_of
from .contract_helpers import (
    ABSENT_CASES,
    CASES,
    CONDITIONS,
    INA,
    PRESENT_CASES,
    SATISFIED,
    VNR,
    assert_ina_result,
    assert_same_value,
    next_value,
    plain_value,
    prepare_case,
    retrieved,
    stored_plain_value,
)

MODES = {"ALWAYS_RETRIEVE": ALWAYS_RETRIEVE, "NEVER_RETRIEVE": NEVER_RETRIEVE,
         "IF_ETAG_CHANGED": IF_ETAG_CHANGED}

cond_param = pytest.mark.parametrize("cond", sorted(CONDITIONS))
case_param = pytest.mark.parametrize("case", CASES)
mode_param = pytest.mark.parametrize("mode", sorted(MODES))

KEY = ("dir", "key")


def _assert_untouched(d, e0, stored):
    """The key is exactly as prepare_case left it, in the API and in the storage."""
    if e0 is INA:
        assert KEY not in d
        assert stored_plain_value(d, KEY) is INA
    else:
        assert d.etag(KEY) == e0
        assert d[KEY] == stored
        assert stored_plain_value(d, KEY) == stored


def _assert_stored(d, value):
    assert stored_plain_value(d, KEY) == value
    if value is INA:
        assert KEY not in d
    else:
        assert d[KEY] == value


@cond_param
@case_param
@mode_param
def test_get_item_if(make_dict, cond, case, mode):
    d = make_dict()
    expected, e0 = prepare_case(d, KEY, case, plain_value(1), plain_value(0))
    r = make_dict().get_item_if(KEY, condition=CONDITIONS[cond], expected_etag=expected,
                                retrieve_value=MODES[mode])
    assert isinstance(r, ConditionalOperationResult)
    satisfied = SATISFIED[(cond, case)]
    if case in ABSENT_CASES:
        assert_ina_result(r, satisfied)
    else:
        assert r.condition_was_satisfied is satisfied
        assert r.actual_etag == e0
        assert r.resulting_etag == e0
        assert_same_value(r.new_value, retrieved(mode, expected, e0, plain_value(1)))
        assert r.value_was_mutated is False
    _assert_untouched(d, e0, plain_value(1))


@cond_param
@case_param
def test_get_item_if_default_mode_is_if_etag_changed(d, cond, case):
    expected, e0 = prepare_case(d, KEY, case, plain_value(1), plain_value(0))
    r = d.get_item_if(KEY, condition=CONDITIONS[cond], expected_etag=expected)
    if case in ABSENT_CASES:
        assert_ina_result(r, SATISFIED[(cond, case)])
    else:
        assert_same_value(r.new_value, retrieved("IF_ETAG_CHANGED", expected, e0, plain_value(1)))


@cond_param
@case_param
@mode_param
def test_set_item_if_real_value(make_dict, cond, case, mode):
    d = make_dict()
    expected, e0 = prepare_case(d, KEY, case, plain_value(1), plain_value(0))
    new = plain_value(2)
    r = d.set_item_if(KEY, value=new, condition=CONDITIONS[cond], expected_etag=expected,
                      retrieve_value=MODES[mode])
    satisfied = SATISFIED[(cond, case)]
    assert r.condition_was_satisfied is satisfied
    if satisfied:
        assert r.actual_etag == e0
        assert r.new_value is new  # the object passed in, never re-read
        assert r.resulting_etag is not INA
        assert r.resulting_etag != e0
        assert r.resulting_etag == make_dict().etag(KEY)
        assert r.value_was_mutated is True
        _assert_stored(make_dict(), plain_value(2))
    elif case in ABSENT_CASES:
        assert_ina_result(r, False)
        _assert_stored(d, INA)
    else:
        assert r.actual_etag == e0
        assert r.resulting_etag == e0
        assert_same_value(r.new_value, retrieved(mode, expected, e0, plain_value(1)))
        assert r.value_was_mutated is False
        _assert_untouched(d, e0, plain_value(1))


@cond_param
@case_param
@mode_param
def test_set_item_if_keep_current(make_dict, cond, case, mode):
    d = make_dict()
    expected, e0 = prepare_case(d, KEY, case, plain_value(1), plain_value(0))
    r = d.set_item_if(KEY, value=KEEP_CURRENT, condition=CONDITIONS[cond], expected_etag=expected,
                      retrieve_value=MODES[mode])
    satisfied = SATISFIED[(cond, case)]
    if case in ABSENT_CASES:
        assert_ina_result(r, satisfied)
    else:
        assert r.condition_was_satisfied is satisfied
        assert r.actual_etag == e0
        assert r.resulting_etag == e0
        assert_same_value(r.new_value, retrieved(mode, expected, e0, plain_value(1)))
        assert r.value_was_mutated is False
    _assert_untouched(make_dict(), e0, plain_value(1))


@cond_param
@case_param
@mode_param
def test_set_item_if_delete_current(make_dict, cond, case, mode):
    d = make_dict()
    expected, e0 = prepare_case(d, KEY, case, plain_value(1), plain_value(0))
    r = d.set_item_if(KEY, value=DELETE_CURRENT, condition=CONDITIONS[cond], expected_etag=expected,
                      retrieve_value=MODES[mode])
    satisfied = SATISFIED[(cond, case)]
    if case in ABSENT_CASES:
        assert_ina_result(r, satisfied)
        _assert_stored(d, INA)
    elif satisfied:
        assert r.condition_was_satisfied is True
        assert r.actual_etag == e0
        assert r.resulting_etag is INA
        assert r.new_value is INA
        assert r.value_was_mutated is True
        _assert_stored(make_dict(), INA)
    else:
        assert r.condition_was_satisfied is False
        assert r.actual_etag == e0
        assert r.resulting_etag == e0
        assert_same_value(r.new_value, retrieved(mode, expected, e0, plain_value(1)))
        assert r.value_was_mutated is False
        _assert_untouched(d, e0, plain_value(1))


@cond_param
@case_param
@mode_param
def test_setdefault_if(make_dict, cond, case, mode):
    d = make_dict()
    expected, e0 = prepare_case(d, KEY, case, plain_value(1), plain_value(0))
    default = plain_value(3)
    r = d.setdefault_if(KEY, default_value=default, condition=CONDITIONS[cond],
                        expected_etag=expected, retrieve_value=MODES[mode])
    satisfied = SATISFIED[(cond, case)]
    assert r.condition_was_satisfied is satisfied
    if case in PRESENT_CASES:  # never writes, even when satisfied
        assert r.actual_etag == e0
        assert r.resulting_etag == e0
        assert_same_value(r.new_value, retrieved(mode, expected, e0, plain_value(1)))
        assert r.value_was_mutated is False
        _assert_untouched(d, e0, plain_value(1))
    elif satisfied:
        assert r.actual_etag is INA
        assert r.new_value is default
        assert r.resulting_etag is not INA
        assert r.resulting_etag == make_dict().etag(KEY)
        assert r.value_was_mutated is True
        _assert_stored(make_dict(), plain_value(3))
    else:
        assert_ina_result(r, False)
        _assert_stored(d, INA)


@cond_param
@case_param
def test_discard_if(make_dict, cond, case):
    d = make_dict()
    expected, e0 = prepare_case(d, KEY, case, plain_value(1), plain_value(0))
    r = d.discard_if(KEY, condition=CONDITIONS[cond], expected_etag=expected)
    satisfied = SATISFIED[(cond, case)]
    if case in ABSENT_CASES:
        assert_ina_result(r, satisfied)
    elif satisfied:
        assert r.condition_was_satisfied is True
        assert r.actual_etag == e0
        assert r.resulting_etag is INA
        assert r.new_value is INA
        assert r.value_was_mutated is True
        _assert_stored(make_dict(), INA)
    else:
        assert r.condition_was_satisfied is False
        assert r.actual_etag == e0
        assert r.resulting_etag == e0
        assert r.new_value is VNR  # always VNR, there is no retrieve mode
        assert r.value_was_mutated is False
        _assert_untouched(d, e0, plain_value(1))


@pytest.mark.insert_only
def test_discard_if_has_no_retrieve_value_parameter(d):
    d["k"] = plain_value(1)
    with pytest.raises(TypeError):
        d.discard_if("k", condition=ANY_ETAG, expected_etag=INA, retrieve_value=ALWAYS_RETRIEVE)
    assert d["k"] == plain_value(1)


def test_discard_if_does_not_call_contains(d, monkeypatch):
    d["k"] = plain_value(1)
    e = d.etag("k")

    def forbidden(*args, **kwargs):
        raise AssertionError("__contains__ must not be called")

    monkeypatch.setattr(type(d), "__contains__", forbidden)
    assert not d.discard_if("k", condition=ETAG_IS_THE_SAME, expected_etag="bogus").condition_was_satisfied
    assert d.discard_if("k", condition=ETAG_IS_THE_SAME, expected_etag=e).value_was_mutated
    assert d.discard_if("k", condition=ANY_ETAG, expected_etag=INA).new_value is INA


# --- get_with_etag ------------------------------------------------------------


@pytest.mark.insert_only
def test_get_with_etag_present(make_dict):
    d = make_dict()
    d[KEY] = plain_value(1)
    r = make_dict().get_with_etag(KEY)
    assert r.condition_was_satisfied is True
    assert r.new_value == plain_value(1)
    assert r.actual_etag == d.etag(KEY)
    assert r.resulting_etag == d.etag(KEY)
    assert r.value_was_mutated is False


@pytest.mark.insert_only
def test_get_with_etag_missing(d):
    assert_ina_result(d.get_with_etag(KEY), True)


def test_get_with_etag_drives_a_cas(make_dict):
    d, other = make_dict(), make_dict()
    d["count"] = plain_value(1)
    r = d.get_with_etag("count")
    w = d.set_item_if("count", value=next_value(r.new_value), condition=ETAG_IS_THE_SAME,
                      expected_etag=r.actual_etag)
    assert w.condition_was_satisfied
    assert other["count"] == plain_value(2)
    stale = d.set_item_if("count", value=plain_value(100), condition=ETAG_IS_THE_SAME, expected_etag=r.actual_etag,
                          retrieve_value=ALWAYS_RETRIEVE)
    assert not stale.condition_was_satisfied
    assert stale.new_value == plain_value(2)
    assert stale.actual_etag == w.resulting_etag
    assert other["count"] == plain_value(2)


# --- idioms from the product description ------------------------------------


def test_insert_if_absent_idiom(make_dict):
    d = make_dict()
    r = d.setdefault_if("token", default_value=plain_value(1), condition=ETAG_IS_THE_SAME,
                        expected_etag=INA)
    assert r.condition_was_satisfied and r.value_was_mutated
    r2 = make_dict().setdefault_if("token", default_value=plain_value(2), condition=ETAG_IS_THE_SAME,
                                   expected_etag=INA)
    assert not r2.condition_was_satisfied
    assert r2.new_value == plain_value(1)
    assert d["token"] == plain_value(1)
    r3 = d.set_item_if("token", value=plain_value(3), condition=ETAG_IS_THE_SAME, expected_etag=INA)
    assert not r3.condition_was_satisfied
    assert d["token"] == plain_value(1)


def test_compare_and_swap_loop_from_the_description(d):
    for _ in range(3):
        while True:
            r = d.get_item_if("count", condition=ANY_ETAG, expected_etag=INA)
            new_value = plain_value(1) if r.new_value is INA else next_value(r.new_value)
            r2 = d.set_item_if("count", value=new_value, condition=ETAG_IS_THE_SAME,
                               expected_etag=r.actual_etag)
            if r2.condition_was_satisfied:
                break
    assert d["count"] == plain_value(3)


def test_cache_refresh_idiom(make_dict):
    d, writer = make_dict(), make_dict()
    writer["cfg"] = plain_value(1)
    first = d.get_item_if("cfg", condition=ETAG_HAS_CHANGED, expected_etag=INA)
    assert first.condition_was_satisfied and first.new_value == plain_value(1)
    same = d.get_item_if("cfg", condition=ETAG_HAS_CHANGED, expected_etag=first.actual_etag)
    assert not same.condition_was_satisfied and same.new_value is VNR
    writer["cfg"] = plain_value(2)
    changed = d.get_item_if("cfg", condition=ETAG_HAS_CHANGED, expected_etag=first.actual_etag)
    assert changed.condition_was_satisfied and changed.new_value == plain_value(2)
    assert changed.actual_etag == writer.etag("cfg")


@pytest.mark.insert_only
def test_any_etag_with_matching_etag_still_gives_vnr(d):
    d["k"] = plain_value(1)
    e = d.etag("k")
    r = d.get_item_if("k", condition=ANY_ETAG, expected_etag=e)
    assert r.condition_was_satisfied and r.new_value is VNR
    assert d.get_item_if("k", condition=ANY_ETAG, expected_etag=INA).new_value == plain_value(1)
    assert d.get_item_if("k", condition=ANY_ETAG, expected_etag="stale").new_value == plain_value(1)


def test_second_cas_with_the_same_etag_fails(make_dict):
    d = make_dict()
    d["k"] = plain_value(0)
    e = d.etag("k")
    assert d.set_item_if("k", value=plain_value(1), condition=ETAG_IS_THE_SAME, expected_etag=e).condition_was_satisfied
    r = make_dict().set_item_if("k", value=plain_value(2), condition=ETAG_IS_THE_SAME, expected_etag=e)
    assert not r.condition_was_satisfied
    assert d["k"] == plain_value(1)


def test_bogus_etag_strings_match_nothing(d):
    d["k"] = plain_value(1)
    for bogus in ["bogus", "", "0", "None"]:
        assert not d.get_item_if("k", condition=ETAG_IS_THE_SAME, expected_etag=bogus).condition_was_satisfied
        assert d.get_item_if("k", condition=ETAG_HAS_CHANGED, expected_etag=bogus).condition_was_satisfied
        assert not d.set_item_if("k", value=plain_value(2), condition=ETAG_IS_THE_SAME,
                                 expected_etag=bogus).condition_was_satisfied
    assert d["k"] == plain_value(1)


def test_successful_write_reports_passed_value_for_every_mode(d):
    for i, mode in enumerate(MODES.values()):
        value = plain_value(10 + i)
        r = d.set_item_if("k", value=value, condition=ANY_ETAG, expected_etag=INA, retrieve_value=mode)
        assert r.new_value is value
        assert d["k"] == value


def test_never_retrieve_does_not_deserialize(make_dict):
    d = make_dict()
    d["k"] = plain_value(1)
    storage_of(d).fs.pipe_file(storage_of(d).key_to_path("k"), b"\x00 this is not a valid serialized value \xff")
    d2 = make_dict()
    e = d2.etag("k")
    r = d2.get_item_if("k", condition=ANY_ETAG, expected_etag=INA, retrieve_value=NEVER_RETRIEVE)
    assert r.new_value is VNR and r.actual_etag == e
    r = d2.get_item_if("k", condition=ETAG_IS_THE_SAME, expected_etag=e)
    assert r.new_value is VNR and r.condition_was_satisfied
    r = d2.set_item_if("k", value=KEEP_CURRENT, condition=ANY_ETAG, expected_etag=e)
    assert r.new_value is VNR
    r = d2.discard_if("k", condition=ETAG_IS_THE_SAME, expected_etag="other")
    assert r.new_value is VNR and not r.condition_was_satisfied


# --- validation of the flags ------------------------------------------------------


@pytest.mark.parametrize("method", ["get_item_if", "set_item_if", "setdefault_if"])
@pytest.mark.parametrize("bad_mode", ["ALWAYS", None, True, object()], ids=["str", "none", "bool", "obj"])
@pytest.mark.insert_only
def test_non_flag_retrieve_value_is_a_typeerror(d, method, bad_mode):
    d["k"] = plain_value(1)
    extra = {"set_item_if": {"value": plain_value(2)},
             "setdefault_if": {"default_value": plain_value(2)}}.get(method, {})
    with pytest.raises(TypeError):
        getattr(d, method)("k", condition=ANY_ETAG, expected_etag=INA, retrieve_value=bad_mode, **extra)
    with pytest.raises(TypeError):
        getattr(d, method)("missing", condition=ANY_ETAG, expected_etag=INA, retrieve_value=bad_mode, **extra)
    assert d["k"] == plain_value(1)
    assert "missing" not in d


@pytest.mark.parametrize("method", ["get_item_if", "set_item_if", "setdefault_if", "discard_if"])
@pytest.mark.parametrize("bad_condition", ["ANY_ETAG", None, ALWAYS_RETRIEVE, KEEP_CURRENT],
                         ids=["str", "none", "retrieve_flag", "joker"])
@pytest.mark.parametrize("present", [True, False], ids=["present", "absent"])
def test_bad_condition_is_a_valueerror(d, method, bad_condition, present):
    if present:
        d["k"] = plain_value(1)
    extra = {"set_item_if": {"value": plain_value(2)},
             "setdefault_if": {"default_value": plain_value(2)}}.get(method, {})
    with pytest.raises(ValueError):
        getattr(d, method)("k", condition=bad_condition, expected_etag=INA, **extra)
    assert ("k" in d) is present
    if present:
        assert d["k"] == plain_value(1)


@pytest.mark.parametrize("joker", [KEEP_CURRENT, DELETE_CURRENT], ids=["keep", "delete"])
@pytest.mark.parametrize("present", [True, False], ids=["present", "absent"])
@pytest.mark.insert_only
def test_setdefault_if_rejects_jokers(d, joker, present):
    if present:
        d["k"] = plain_value(1)
    with pytest.raises(TypeError):
        d.setdefault_if("k", default_value=joker, condition=ANY_ETAG, expected_etag=INA)
    assert ("k" in d) is present


@pytest.mark.parametrize("method", ["get_item_if", "set_item_if", "setdefault_if", "discard_if"])
@pytest.mark.insert_only
def test_conditional_parameters_are_keyword_only(d, method):
    with pytest.raises(TypeError):
        getattr(d, method)("k", ANY_ETAG, INA)
    assert "k" not in d


@pytest.mark.insert_only
def test_result_dataclass_is_frozen(d):
    d["k"] = plain_value(1)
    r = d.get_with_etag("k")
    with pytest.raises(AttributeError):
        r.new_value = plain_value(5)
    assert r.new_value == plain_value(1)


def test_value_was_mutated_cases(d):
    insert = d.set_item_if("k", value=plain_value(1), condition=ANY_ETAG, expected_etag=INA)
    assert insert.actual_etag is INA and insert.value_was_mutated
    overwrite = d.set_item_if("k", value=plain_value(2), condition=ANY_ETAG, expected_etag=INA)
    assert overwrite.actual_etag == insert.resulting_etag and overwrite.value_was_mutated
    delete = d.discard_if("k", condition=ANY_ETAG, expected_etag=INA)
    assert delete.actual_etag == overwrite.resulting_etag and delete.value_was_mutated
    nothing = d.set_item_if("k", value=DELETE_CURRENT, condition=ANY_ETAG, expected_etag=INA)
    assert nothing.value_was_mutated is False
    noop = d.set_item_if("k", value=KEEP_CURRENT, condition=ANY_ETAG, expected_etag=INA)
    assert noop.value_was_mutated is False and noop.condition_was_satisfied
