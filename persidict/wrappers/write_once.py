"""WriteOnceDict: the first write of a key wins; later writes are ignored (and optionally checked).

Useful for caching results of deterministic computations: many workers may
store the same result, and the store keeps exactly one copy.  With
``p_consistency_checks`` above 0, a fraction of repeated writes is compared
with the stored value (a hash of the serialized bytes), so nondeterminism
is caught instead of silently ignored.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import random
from typing import Any

from ..codecs.registry import get_codec
from ..core.front import APPEND_ONLY, NonEmptyPersiDictKey, PersiDict
from ..keys.tuples import NonEmptySafeStrTuple, SafeStrTuple, to_nonempty_key
from ..protocol.exceptions import MutationPolicyError
from ..protocol.flags import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    DELETE_CURRENT,
    IF_ETAG_CHANGED,
    ITEM_NOT_AVAILABLE,
    KEEP_CURRENT,
    NEVER_RETRIEVE,
    VALUE_NOT_RETRIEVED,
    ConditionalOperationResult,
    ETagConditionFlag,
    ETagIfExists,
    KeepCurrentFlag,
    OperationResult,
    RetrieveValueFlag,
    TransformingFunction,
    ValueType,
)
from .pass_through import PassThroughDict, require_persidict

__all__ = ["WriteOnceDict"]

WRITE_ONCE = "write-once"


class WriteOnceDict(PassThroughDict[ValueType]):
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
            from ..presets.local import FileDirDict  # the default store; wrappers otherwise know only PersiDict

            wrapped_dict = FileDirDict(append_only=True)
        require_persidict("wrapped_dict", wrapped_dict)
        if not wrapped_dict.append_only:
            raise ValueError("wrapped_dict must be append-only (append_only=True)")
        if isinstance(p_consistency_checks, KeepCurrentFlag):
            raise ValueError("p_consistency_checks cannot be KEEP_CURRENT at construction")
        super().__init__(wrapped_dict, append_only=True)
        self._p_consistency_checks = 0.0
        self.p_consistency_checks = p_consistency_checks
        self._checks_attempted = 0
        self._checks_passed = 0

    # --- configuration and counters ------------------------------------------
    @property
    def wrapped_dict(self) -> PersiDict[ValueType]:
        """The append-only dict that holds the values."""
        return self._inner

    @property
    def p_consistency_checks(self) -> float:
        """Probability that a repeated write is compared with the stored value."""
        return self._p_consistency_checks

    @p_consistency_checks.setter
    def p_consistency_checks(self, value: Any) -> None:
        if value is KEEP_CURRENT:
            return
        if value is None:
            value = 0.0
        if not isinstance(value, numbers.Real):
            raise TypeError(f"p_consistency_checks must be a number in [0, 1] or None, got {value!r}")
        probability = float(value)
        if math.isnan(probability) or not 0 <= probability <= 1:
            raise ValueError(f"p_consistency_checks must be in [0, 1], got {value!r}")
        self._p_consistency_checks = probability

    @property
    def consistency_checks_attempted(self) -> int:
        """Repeated writes that were compared with the stored value."""
        return self._checks_attempted

    @property
    def consistency_checks_passed(self) -> int:
        """Compared writes whose value matched the stored one."""
        return self._checks_passed

    @property
    def consistency_checks_failed(self) -> int:
        """Compared writes whose value differed from the stored one."""
        return self._checks_attempted - self._checks_passed

    def get_params(self) -> dict[str, Any]:
        return {"p_consistency_checks": self._p_consistency_checks, "wrapped_dict": self._inner}

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails.  Dunders (pickle and copy probes)
        # are never forwarded, and neither is anything before __init__ set _inner.
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        try:
            inner = self.__dict__["_inner"]
        except KeyError:
            raise AttributeError(name) from None
        return getattr(inner, name)

    # --- writes -----------------------------------------------------------------
    def __setitem__(self, key: NonEmptyPersiDictKey, value: Any) -> None:
        """Store ``value`` unless ``key`` already has one (then maybe check that they agree)."""
        key = to_nonempty_key(key)
        if value is KEEP_CURRENT:
            return
        if value is DELETE_CURRENT:
            raise MutationPolicyError(APPEND_ONLY)
        self._validate_value(value)
        check_every_time = self._p_consistency_checks >= 1
        result = self._inner.setdefault_if(
            key,
            default_value=value,
            condition=ANY_ETAG,
            expected_etag=ITEM_NOT_AVAILABLE,
            retrieve_value=ALWAYS_RETRIEVE if check_every_time else NEVER_RETRIEVE,
        )
        if result.value_was_mutated:
            return
        if check_every_time:
            stored = result.new_value  # already fetched: no second read
        elif self._p_consistency_checks > 0 and random.random() < self._p_consistency_checks:
            stored = self._inner.get(key, ITEM_NOT_AVAILABLE)
        else:
            return
        if stored is not ITEM_NOT_AVAILABLE and stored is not VALUE_NOT_RETRIEVED:
            self._check_consistency(value, stored)

    def _check_consistency(self, proposed: Any, stored: Any) -> None:
        """Compare the two values; a mismatch is a policy error.

        Equal serialized bytes (compared by hash) settle it at once.  Bytes can
        differ for equal values, though (a set of strings is written in its
        iteration order, which differs between processes), so values whose
        bytes differ are then compared as values of the same types.
        """
        self._checks_attempted += 1
        if self._fingerprint(proposed) != self._fingerprint(stored) and not _equal(proposed, stored):
            raise MutationPolicyError(WRITE_ONCE)
        self._checks_passed += 1

    def _fingerprint(self, value: Any) -> bytes:
        return hashlib.sha256(get_codec(self.serialization_format).dumps(value)).digest()

    def __delitem__(self, key: NonEmptyPersiDictKey) -> None:
        raise MutationPolicyError(WRITE_ONCE)

    def _remove_item(self, key: NonEmptySafeStrTuple) -> None:
        raise MutationPolicyError(APPEND_ONLY)

    def set_item_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        value: Any,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        """Always refused: a write-once dict has no conditional overwrite."""
        raise MutationPolicyError(WRITE_ONCE)

    def transform_item(
        self,
        key: NonEmptyPersiDictKey,
        *,
        transformer: TransformingFunction[ValueType],
        n_retries: int | None = 6,
    ) -> OperationResult[ValueType]:
        """The read-modify-write loop over this dict: writing a value ends in ``set_item_if``, refused."""
        return PersiDict.transform_item(self, key, transformer=transformer, n_retries=n_retries)

    def _rewrap(self, inner: PersiDict[ValueType], prefix: SafeStrTuple) -> WriteOnceDict[ValueType]:
        """The same wrapper over the wrapped dict's subdict (counters start at zero)."""
        return WriteOnceDict(wrapped_dict=inner, p_consistency_checks=self._p_consistency_checks)


def _equal(a: Any, b: Any) -> bool:
    """Equal values of the same types, down through lists, tuples and dicts.

    ``2 == 2.0``, but a function that returns one and then the other is not
    deterministic; an ``==`` that raises or is ambiguous (numpy arrays) counts
    as unequal.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:
        return False
