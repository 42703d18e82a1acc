"""The truth tables (docs/concurrency.md#truth-tables), run through MutableDictCached, cell by cell.

Parametrized over ``world`` (see conftest.py): every registered pairing of a
main store and caches; an S3 main is one more row there.  Each test checks
the result against docs/concurrency.md, the state of main (read through another
object), and that the caches still tell the truth (``check_after``).

The ``prep`` parameter sets the key up either through the wrapper (caches
warm and right) or partly from outside (another object on main writes or
deletes after the wrapper cached an older version: caches stale or ghostly).
The dict API runs in test_cached_contract_api.py, coherence in
test_cached_coherence.py.
"""

from __future__ import annotations

import pytest

from persidict import DELETE_CURRENT, ETAG_IS_THE_SAME, KEEP_CURRENT, ConditionalOperationResult

from .wrapper_helpers import (
    ABSENT_CASES,
    CASES,
    CONDITIONS,
    CURRENT,
    INA,
    KEY,
    MODES,
    NEW,
    OLDER,
    SATISFIED,
    VNR,
    assert_ina_result,
    assert_unchanged,
    check_after,
    main_etag_of,
    prepare,
    retrieved,
)

cond_param = pytest.mark.parametrize("cond", sorted(CONDITIONS))
case_param = pytest.mark.parametrize("case", CASES)
mode_param = pytest.mark.parametrize("mode", sorted(MODES))
prep_param = pytest.mark.parametrize("prep", ["wrapper", "outside"])


# --- truth tables ------------------------------------------------------------------
@prep_param
@cond_param
@case_param
@mode_param
def test_get_item_if(world, prep, cond, case, mode):
    w = world.mutable()
    expected, e0 = prepare(world, w, case, prep)
    r = w.get_item_if(KEY, condition=CONDITIONS[cond], expected_etag=expected, retrieve_value=MODES[mode])
    assert isinstance(r, ConditionalOperationResult)
    satisfied = SATISFIED[(cond, case)]
    if case in ABSENT_CASES:
        assert_ina_result(r, satisfied)
    else:
        assert_unchanged(r, satisfied, e0, retrieved(mode, expected, e0, CURRENT))
    check_after(world)


@prep_param
@cond_param
@case_param
@mode_param
def test_set_item_if_value(world, prep, cond, case, mode):
    w = world.mutable()
    expected, e0 = prepare(world, w, case, prep)
    r = w.set_item_if(KEY, value=NEW, condition=CONDITIONS[cond], expected_etag=expected,
                      retrieve_value=MODES[mode])
    satisfied = SATISFIED[(cond, case)]
    main = world.open_main()
    if satisfied:
        assert r.condition_was_satisfied is True
        assert r.actual_etag == e0
        assert r.resulting_etag == main.etag(KEY) != e0
        assert r.new_value is NEW
        assert main[KEY] == NEW
        assert main_etag_of(world.etag_cache, KEY) == r.resulting_etag  # exactly the written version
    elif case in ABSENT_CASES:
        assert_ina_result(r, False)
        assert KEY not in main
    else:
        assert_unchanged(r, False, e0, retrieved(mode, expected, e0, CURRENT))
        assert main[KEY] == CURRENT
    check_after(world)


@prep_param
@cond_param
@case_param
@mode_param
def test_set_item_if_keep_current(world, prep, cond, case, mode):
    w = world.mutable()
    expected, e0 = prepare(world, w, case, prep)
    r = w.set_item_if(KEY, value=KEEP_CURRENT, condition=CONDITIONS[cond], expected_etag=expected,
                      retrieve_value=MODES[mode])
    satisfied = SATISFIED[(cond, case)]
    if case in ABSENT_CASES:
        assert_ina_result(r, satisfied)
    else:
        assert_unchanged(r, satisfied, e0, retrieved(mode, expected, e0, CURRENT))
        assert world.open_main().etag(KEY) == e0
    check_after(world)


@prep_param
@cond_param
@case_param
@mode_param
def test_set_item_if_delete_current(world, prep, cond, case, mode):
    w = world.mutable()
    expected, e0 = prepare(world, w, case, prep)
    r = w.set_item_if(KEY, value=DELETE_CURRENT, condition=CONDITIONS[cond], expected_etag=expected,
                      retrieve_value=MODES[mode])
    satisfied = SATISFIED[(cond, case)]
    main = world.open_main()
    if case in ABSENT_CASES:
        assert_ina_result(r, satisfied)
    elif satisfied:
        assert (r.condition_was_satisfied, r.actual_etag, r.resulting_etag, r.new_value) == (True, e0, INA, INA)
        assert r.value_was_mutated is True
        assert KEY not in main
        assert KEY not in world.data_cache and KEY not in world.etag_cache
    else:
        assert_unchanged(r, False, e0, retrieved(mode, expected, e0, CURRENT))
        assert main[KEY] == CURRENT
    check_after(world)


@prep_param
@cond_param
@case_param
@mode_param
def test_setdefault_if(world, prep, cond, case, mode):
    w = world.mutable()
    expected, e0 = prepare(world, w, case, prep)
    r = w.setdefault_if(KEY, default_value=NEW, condition=CONDITIONS[cond], expected_etag=expected,
                        retrieve_value=MODES[mode])
    satisfied = SATISFIED[(cond, case)]
    main = world.open_main()
    if case not in ABSENT_CASES:
        assert_unchanged(r, satisfied, e0, retrieved(mode, expected, e0, CURRENT))
        assert main[KEY] == CURRENT
    elif satisfied:
        assert (r.condition_was_satisfied, r.actual_etag, r.new_value) == (True, INA, NEW)
        assert r.resulting_etag == main.etag(KEY)
        assert main[KEY] == NEW
    else:
        assert_ina_result(r, False)
        assert KEY not in main
    check_after(world)


@prep_param
@cond_param
@case_param
def test_discard_if(world, prep, cond, case):
    w = world.mutable()
    expected, e0 = prepare(world, w, case, prep)
    r = w.discard_if(KEY, condition=CONDITIONS[cond], expected_etag=expected)
    satisfied = SATISFIED[(cond, case)]
    main = world.open_main()
    if case in ABSENT_CASES:
        assert_ina_result(r, satisfied)
        assert KEY not in world.data_cache and KEY not in world.etag_cache  # ghosts purged
    elif satisfied:
        assert (r.condition_was_satisfied, r.actual_etag, r.resulting_etag, r.new_value) == (True, e0, INA, INA)
        assert KEY not in main
    else:
        assert_unchanged(r, False, e0, VNR)  # discard_if never retrieves
        assert main[KEY] == CURRENT
    check_after(world)


@prep_param
def test_get_with_etag(world, prep):
    w = world.mutable()
    _, e0 = prepare(world, w, "present_e0", prep)
    r = w.get_with_etag(KEY)
    assert (r.condition_was_satisfied, r.actual_etag, r.resulting_etag, r.new_value) == (True, e0, e0, CURRENT)
    cas = w.set_item_if(KEY, value=NEW, condition=ETAG_IS_THE_SAME, expected_etag=r.actual_etag)
    assert cas.condition_was_satisfied
    assert_ina_result(w.get_with_etag(("missing",)), True)
    check_after(world)


def test_second_cas_with_stale_etag_fails(world):
    w = world.mutable()
    w[KEY] = OLDER
    etag = w.get_with_etag(KEY).actual_etag
    assert w.set_item_if(KEY, value=CURRENT, condition=ETAG_IS_THE_SAME, expected_etag=etag).condition_was_satisfied
    r = w.set_item_if(KEY, value=NEW, condition=ETAG_IS_THE_SAME, expected_etag=etag)
    assert not r.condition_was_satisfied
    assert r.new_value == CURRENT  # IF_ETAG_CHANGED with a stale ETag fetches
    assert world.open_main()[KEY] == CURRENT
    check_after(world)
