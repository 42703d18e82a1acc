"""Every contract test stores values its store kind can hold (``contract_helpers.plain_value``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .contract_helpers import use_values_of


@pytest.fixture(autouse=True)
def _values_of_the_store_kind(request: pytest.FixtureRequest) -> Iterator[None]:
    """``plain_value(n)`` gives the kind's own values: tables in a parquet store, arrays in an npy store."""
    if "store_kind" not in request.fixturenames:
        yield
        return
    use_values_of(request.getfixturevalue("store_kind").format)
    yield
    use_values_of("pkl")
