"""Big Azure values go up in blocks we stage and come back in ranges, with every guarantee of one request.

Against Azurite, with 5 MiB blocks and a threshold of 6 MiB, so a 12 MiB value
is three blocks and one commit.  Requests are counted on the client (every
HTTP attempt, see ``counting_dict`` in ``test_azure.py``).  Lost answers are
made as in ``test_lost_answers_on_emulators.py``: the real request is applied
by Azurite, then the SDK's connection error is raised in its place.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError

import persidict.backends.azure_blocks as blocks
from persidict import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, FsspecDict, Transfers
from persidict.backends.azure import AzureBackend
from persidict.protocol.versions import ABSENT, PreconditionFailed
from tests.backends.racing import race_an_insert
from tests.backends.test_azure import RequestLog, counting_dict
from tests.servers.azurite import Azurite

pytestmark = pytest.mark.timeout(180)

MiB = 1024**2
SMALL = Transfers(part_threshold=6 * MiB, part_size=5 * MiB, parts_in_flight=2)
BIG = 12 * MiB


def _value(tag: int) -> bytes:
    return bytes([tag]) * BIG


def _open(azurite: Azurite, name: str | None = None) -> tuple[FsspecDict[Any], RequestLog]:
    return counting_dict(azurite, name or f"store-{uuid.uuid4().hex[:12]}", transfers=SMALL, timeout=60)


def _backend(store: FsspecDict[Any]) -> AzureBackend:
    backend = store._backend
    assert isinstance(backend, AzureBackend)
    return backend


def _comps(log: RequestLog) -> list[str]:
    return [entry["comp"] or entry["method"] for entry in log.entries]


def test_block_ids_are_unique_per_write_and_of_one_length() -> None:
    first, second = ([blocks.block_id_of(prefix, number) for number in (1, 2, 10_000)]
                     for prefix in (secrets.token_hex(8), secrets.token_hex(8)))
    assert len({len(block_id) for block_id in first + second}) == 1
    assert not set(first) & set(second)
    assert [block_id[-6:] for block_id in first] == ["000001", "000002", "010000"]


def test_a_big_value_goes_up_in_blocks_and_comes_back_in_ranges(azurite: Azurite) -> None:
    store, log = _open(azurite)
    store["other"] = 0  # a store's first write also checks the container and writes its layout record
    log.clear()
    store["big"] = _value(1)
    assert _comps(log) == ["block", "block", "block", "blocklist"]
    assert log.entries[-1]["if_match"] is None and log.entries[-1]["if_none_match"] is None  # a plain set
    log.clear()
    assert store["big"] == _value(1)
    gets = [entry for entry in log.entries if entry["method"] == "GET"]
    assert len(gets) == 3 and all(entry["if_match"] == store.etag("big") for entry in gets[1:])


def test_a_value_at_the_threshold_stays_one_request(azurite: Azurite) -> None:
    store, log = _open(azurite)
    store["other"] = 0
    value = b"x" * (SMALL.part_threshold - 64)  # the pickle's header brings it near the threshold, not over
    log.clear()
    store["small"] = value
    assert store["small"] == value
    assert log.methods() == ["PUT", "GET"]


def test_compare_and_swap_of_a_big_value_is_checked_on_the_commit(azurite: Azurite) -> None:
    store, log = _open(azurite)
    store["k"] = _value(1)
    first = store.etag("k")
    done = store.set_item_if("k", value=_value(2), condition=ETAG_IS_THE_SAME, expected_etag=first)
    assert done.condition_was_satisfied and done.value_was_mutated
    log.clear()
    stale = store.set_item_if("k", value=_value(3), condition=ETAG_IS_THE_SAME, expected_etag=first)
    assert not stale.condition_was_satisfied
    commit = next(entry for entry in log.entries if entry["comp"] == "blocklist")
    assert commit["if_match"] == first
    assert store["k"] == _value(2) and store.etag("k") == done.resulting_etag  # nothing applied


def test_an_insert_of_a_big_value_over_an_existing_one_is_refused(azurite: Azurite) -> None:
    store, _ = _open(azurite)
    backend = _backend(store)
    path = backend.path_for("k.bin")
    backend.put(path, b"there")
    with pytest.raises(PreconditionFailed):
        backend.put(path, _value(1), ABSENT)
    assert backend.read(path) == b"there"


def test_two_writers_racing_an_insert_of_a_big_value_have_exactly_one_winner_that_knows_it(
    azurite: Azurite,
) -> None:
    name = f"store-{uuid.uuid4().hex[:12]}"
    opened = [_open(azurite, name) for _ in range(2)]
    stores = [store for store, _ in opened]
    race_an_insert(stores, [_value(1), _value(2)])
    for _, log in opened:  # both went up in blocks we staged, and both commits carried the condition
        assert _comps(log).count("block") >= 3
        assert [entry["if_none_match"] for entry in log.entries if entry["comp"] == "blocklist"][-1:] == ["*"]


def _lose_answers(monkeypatch: pytest.MonkeyPatch, hook: str, which: int) -> list[int]:
    """Make call number ``which`` of ``azure_blocks.<hook>`` apply on Azurite, then lose its answer."""
    real, calls = getattr(blocks, hook), []

    async def applied_then_lost(*args: Any) -> Any:
        result = await real(*args)
        calls.append(len(calls))
        if len(calls) == which:
            raise ServiceResponseError("lost after the server applied it")
        return result

    monkeypatch.setattr(blocks, hook, applied_then_lost)
    return calls


def test_a_block_whose_answer_is_lost_is_sent_again_alone(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    store, log = _open(azurite)
    store["other"] = 0
    _lose_answers(monkeypatch, "_stage", 2)
    log.clear()
    store["big"] = _value(5)
    assert _comps(log) == ["block"] * 4 + ["blocklist"]  # three blocks, one of them twice: not the whole value
    assert store["big"] == _value(5)


def test_a_lost_answer_on_the_commit_is_reconciled(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = _open(azurite)
    store["other"] = 0
    calls = _lose_answers(monkeypatch, "_commit", 1)
    inserted = store.setdefault_if("k", default_value=_value(1), condition=ETAG_IS_THE_SAME,
                                   expected_etag=ITEM_NOT_AVAILABLE)
    assert calls == [0] and inserted.value_was_mutated  # applied, answer lost, and the winner knows it
    assert inserted.resulting_etag == store.etag("k") and store["k"] == _value(1)


@pytest.mark.parametrize("conditional", [False, True])
def test_a_commit_after_another_writers_commit(azurite: Azurite, monkeypatch: pytest.MonkeyPatch,
                                               conditional: bool) -> None:
    # Another writer's commit discards the blocks we staged: a plain write stages them again
    # (and is the last writer), a compare-and-swap is refused by its condition.
    name = f"store-{uuid.uuid4().hex[:12]}"
    (ours, log), (theirs, _) = _open(azurite, name), _open(azurite, name)
    ours["k"] = b"first"
    first = ours.etag("k")
    real, landed = blocks._commit, []

    async def commit(*args: Any) -> str:
        if not landed:  # the other writer's big value lands after our blocks are staged
            landed.append(True)
            await asyncio.get_running_loop().run_in_executor(None, lambda: theirs.__setitem__("k", _value(2)))
        return await real(*args)

    monkeypatch.setattr(blocks, "_commit", commit)
    log.clear()
    if conditional:
        result = ours.set_item_if("k", value=_value(1), condition=ETAG_IS_THE_SAME, expected_etag=first)
        assert not result.condition_was_satisfied
        assert ours["k"] == _value(2)
    else:
        ours["k"] = _value(1)
        assert _comps(log) == ["block"] * 3 + ["blocklist"] + ["block"] * 3 + ["blocklist"]
        assert ours["k"] == _value(1)
