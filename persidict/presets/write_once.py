"""WriteOnceDict: the first write of a key wins; later writes are ignored (and optionally checked).

Useful for caching results of deterministic computations: many workers may
store the same result, and the store keeps exactly one copy.  With
``p_consistency_checks`` above 0, a fraction of repeated writes is compared
with the stored value (a hash of the serialized bytes), so nondeterminism
is caught instead of silently ignored.  The policy is a layer of the store
(``layers/policy.py``): ``update``, ``setdefault``, ``|=`` and every other
method meet it, not only ``[]=``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

from ..codecs.registry import get_codec
from ..core.front import PersiDict, StoreDict
from ..core.settings import Settings
from ..layers.policy import ConsistencyChecks, WriteOnceStore
from ..protocol.flags import KeepCurrentFlag, ValueType
from .cached import require_persidict

__all__ = ["WriteOnceDict"]


def _probability(value: Any) -> float:
    """``p_consistency_checks`` as a float in [0, 1] (``None`` is 0)."""
    if value is None:
        return 0.0
    if not isinstance(value, numbers.Real):
        raise TypeError(f"p_consistency_checks must be a number in [0, 1] or None, got {value!r}")
    probability = float(value)
    if math.isnan(probability) or not 0 <= probability <= 1:
        raise ValueError(f"p_consistency_checks must be in [0, 1], got {value!r}")
    return probability


class WriteOnceDict(StoreDict[ValueType]):
    """An append-only wrapper where repeated writes of a key are silently ignored.

    ``wrapped_dict`` must be append-only (default: ``FileDirDict(append_only=True)``
    in ``./__file_dir_dict__``).  A repeated write is compared with the stored
    value with probability ``p_consistency_checks``; a mismatch raises
    ``MutationPolicyError("write-once")``.  The stored value never changes.
    Unknown attributes are looked up on the wrapped dict (e.g. ``base_dir``).

    Example:
        >>> from persidict import LocalDict
        >>> d = WriteOnceDict(wrapped_dict=LocalDict(append_only=True), p_consistency_checks=1)
        >>> d["k"] = 1
        >>> d["k"] = 1  # ignored, and checked: equal
        >>> d.consistency_checks_passed
        1
    """

    def __init__(
        self,
        *,
        wrapped_dict: PersiDict[ValueType] | None = None,
        p_consistency_checks: float | None = None,
    ) -> None:
        if wrapped_dict is None:
            from .local import FileDirDict  # the default store, as in persidict 0.x

            wrapped_dict = FileDirDict(append_only=True)
        require_persidict("wrapped_dict", wrapped_dict)
        if not wrapped_dict.append_only:
            raise ValueError("wrapped_dict must be append-only (append_only=True)")
        if isinstance(p_consistency_checks, KeepCurrentFlag):
            raise ValueError("p_consistency_checks cannot be KEEP_CURRENT at construction")
        codec = get_codec(wrapped_dict.serialization_format, safe_json=getattr(wrapped_dict, "safe_json", False))
        checks = ConsistencyChecks(_probability(p_consistency_checks), codec.dumps)
        params = {"wrapped_dict": wrapped_dict, "p_consistency_checks": checks.probability}
        self._open(WriteOnceStore(wrapped_dict._items, checks), Settings(type(self), params),
                   base_class_for_values=wrapped_dict.base_class_for_values,
                   serialization_format=wrapped_dict.serialization_format, retry=wrapped_dict._retry)

    @property
    def _checks(self) -> ConsistencyChecks:
        return self._store.checks  # type: ignore[attr-defined,no-any-return]

    @property
    def wrapped_dict(self) -> PersiDict[ValueType]:
        """The append-only dict that holds the values."""
        return self._settings.params["wrapped_dict"]  # type: ignore[no-any-return]

    @property
    def p_consistency_checks(self) -> float:
        """Probability that a repeated write is compared with the stored value."""
        return self._checks.probability

    @p_consistency_checks.setter
    def p_consistency_checks(self, value: Any) -> None:
        if isinstance(value, KeepCurrentFlag):
            return
        self._checks.probability = _probability(value)
        params = {**self._settings.params, "p_consistency_checks": self._checks.probability}
        self._settings = dataclasses.replace(self._settings, params=params)

    @property
    def consistency_checks_attempted(self) -> int:
        """Repeated writes that were compared with the stored value."""
        return self._checks.attempted

    @property
    def consistency_checks_passed(self) -> int:
        """Compared writes whose value matched the stored one."""
        return self._checks.passed

    @property
    def consistency_checks_failed(self) -> int:
        """Compared writes whose value differed from the stored one."""
        return self._checks.attempted - self._checks.passed

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails.  Dunders (pickle and copy probes)
        # are never forwarded, and neither is anything before __init__ set the settings.
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        try:
            settings = self.__dict__["_settings"]
        except KeyError:
            raise AttributeError(name) from None
        return getattr(settings.params["wrapped_dict"], name)
