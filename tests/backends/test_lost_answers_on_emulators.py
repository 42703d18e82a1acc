"""Lost answers on GCS (fake-gcs-server) and Azure (Azurite): the real servers apply, the answer is lost.

``tests/backends/test_s3_faults.py`` loses answers inside a moto server.  The
GCS and Azure emulators cannot be wrapped that way (a Go binary, a node
process), so here the loss happens on the client side: the backend's request
hook sends the real request, the emulator applies it, and the hook then raises
what the cloud's SDK raises when a connection drops before the answer arrives
(aiohttp's ``ServerDisconnectedError`` for GCS, azure-core's
``ServiceResponseError`` for Azure).  The resend meets its own result, and the
caller must still learn what really happened: this proves, against each real
server, that the write ids and lineages we reconcile with survive the round
trip through its metadata.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import ServiceResponseError

from persidict import ALWAYS_RETRIEVE, ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, FsspecDict, MutationPolicyError

from ..servers import fake_gcs
from ..servers.azurite import make_azure_dict
from ..servers.registry import SERVERS

LOSSES: dict[str, Callable[[], BaseException]] = {
    "gcs": lambda: aiohttp.ServerDisconnectedError("lost after the server applied it"),
    "azure": lambda: ServiceResponseError("lost after the server applied it"),
}


def _open(cloud: str, name: str, **kwargs: Any) -> FsspecDict[Any]:
    if cloud == "gcs":
        return fake_gcs.make_gcs_dict(SERVERS.get("gcs"), name, **kwargs)
    return make_azure_dict(SERVERS.get("azure"), name, **kwargs)


class LostAnswers:
    """Makes one store's writes and deletes apply on the server and then lose their answers."""

    def __init__(self, store: FsspecDict[Any], cloud: str) -> None:
        self.backend = store._backend
        self.loss = LOSSES[cloud]
        self.lost = 0
        for hook in ("_put_object", "_delete_object"):
            self._lose_answers_of(hook)

    def _lose_answers_of(self, hook: str) -> None:
        real = getattr(self.backend, hook)

        async def applied_then_lost(*args: Any, **kwargs: Any) -> Any:
            result = await real(*args, **kwargs)  # the server has applied the request here
            if self.lost % 2 == 0:  # every other answer: the resend's own answer arrives
                self.lost += 1
                raise self.loss()
            self.lost += 1
            return result

        setattr(self.backend, hook, applied_then_lost)


@pytest.fixture(params=sorted(LOSSES))
def cloud(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def name() -> str:
    return f"lost-{uuid.uuid4().hex[:12]}"


def test_increments_whose_answers_are_lost_apply_exactly_once(cloud: str, name: str) -> None:
    d = _open(cloud, name)
    faults = LostAnswers(d, cloud)
    for _ in range(10):
        d.transform_item("counter", transformer=lambda v: 1 if v is ITEM_NOT_AVAILABLE else v + 1)
    assert faults.lost >= 10
    assert _open(cloud, name)["counter"] == 10


def test_an_insert_whose_answer_is_lost_knows_it_won(cloud: str, name: str) -> None:
    d = _open(cloud, name)
    LostAnswers(d, cloud)
    result = d.setdefault_if("claim", default_value="mine", condition=ETAG_IS_THE_SAME,
                             expected_etag=ITEM_NOT_AVAILABLE, retrieve_value=ALWAYS_RETRIEVE)
    assert result.value_was_mutated and result.new_value == "mine"
    assert result.resulting_etag == _open(cloud, name).etag("claim")


def test_an_insert_that_really_lost_says_so(cloud: str, name: str) -> None:
    _open(cloud, name)["claim"] = "theirs"
    d = _open(cloud, name)
    LostAnswers(d, cloud)
    result = d.setdefault_if("claim", default_value="mine", condition=ETAG_IS_THE_SAME,
                             expected_etag=ITEM_NOT_AVAILABLE, retrieve_value=ALWAYS_RETRIEVE)
    assert not result.value_was_mutated and result.new_value == "theirs"


def test_a_pop_whose_answer_is_lost_returns_the_value(cloud: str, name: str) -> None:
    d = _open(cloud, name)
    values = {f"k{i}": [i, "v"] for i in range(4)}
    d.update(values)
    faults = LostAnswers(d, cloud)
    assert [d.pop(key) for key in values] == list(values.values())
    assert faults.lost >= 2
    assert len(_open(cloud, name)) == 0


def test_a_first_append_only_write_whose_answer_is_lost_succeeds(cloud: str, name: str) -> None:
    d = _open(cloud, name, append_only=True)
    LostAnswers(d, cloud)
    d["result"] = 42  # the resend meets our own object: success, not MutationPolicyError
    with pytest.raises(MutationPolicyError):
        d["result"] = 43
    assert _open(cloud, name)["result"] == 42
