"""The digest of a call's arguments: bound to the signature, defaults applied, canonically encoded.

``f(1, b=2)``, ``f(1, 2)`` and, if ``b`` defaults to 2, ``f(1)`` share a
digest.  ``ignore`` leaves named arguments out (``verbose``, ``n_jobs``); a
``key`` function replaces the arguments by what it returns, for calls whose
arguments have no encoding (a connection, a model object).
"""

from __future__ import annotations

import hashlib
import inspect
import reprlib
from collections.abc import Callable, Iterable
from typing import Any

from .canonical import Undigestible, text
from .encoding import encode, type_name

__all__ = ["ArgumentDigester"]

_SUPPORTED = (
    "None, bool, int, float, complex, str, bytes, tuples, lists, dicts, sets, dates and times, Decimal, Fraction, "
    "UUID, paths, enums, dataclasses, namedtuples, SafeStrTuple, numpy arrays, pandas, pyarrow and polars data"
)

_SUMMARY = reprlib.Repr()
_SUMMARY.maxstring, _SUMMARY.maxother, _SUMMARY.maxlist, _SUMMARY.maxdict = 40, 40, 4, 4


def _undigestible_error(function_name: str, argument: str, error: Undigestible) -> TypeError:
    """The ``TypeError`` that names the argument, where in it the part sits, its type, and the ways out."""
    where = argument + "".join(reversed(error.path))
    hint = f" ({error.hint})" if error.hint else ""
    return TypeError(
        f"memoize cannot key argument {argument!r} of {function_name}(): {where} is a {type_name(error.value)}"
        f"{hint}, which has no canonical encoding (supported: {_SUPPORTED}). Leave it out of the key with "
        f"memoize(..., ignore=({argument!r},)) if it does not change the result, or pass key=<a function of "
        "the same arguments> that returns something keyable"
    )


class ArgumentDigester:
    """Digests the calls of one function: arguments bound to its signature, defaults applied, then encoded."""

    def __init__(
        self,
        func: Callable[..., Any],
        function_name: str,
        ignore: Iterable[str] = (),
        key: Callable[..., Any] | None = None,
    ) -> None:
        self._signature = inspect.signature(func)
        self._function_name = function_name
        self._ignore = frozenset(ignore)
        self._key = key
        self._check_ignore()
        parameters = self._signature.parameters.values()
        simple = all(parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for parameter in parameters)
        self._all_positional = tuple(parameter.name for parameter in parameters) if simple else None
        self._var_keyword = next(
            (parameter.name for parameter in parameters if parameter.kind is inspect.Parameter.VAR_KEYWORD), None
        )

    def _check_ignore(self) -> None:
        """Names in ``ignore`` must be parameters (or go to ``**kwargs``): a typo would key silently."""
        if self._key is not None and self._ignore:
            raise ValueError("memoize: pass ignore= or key=, not both (key= decides alone what the key holds)")
        parameters = self._signature.parameters
        takes_any = any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values())
        unknown = sorted(name for name in self._ignore if name not in parameters)
        if unknown and not takes_any:
            raise ValueError(f"memoize: ignore= names {unknown}, which are not parameters of {self._function_name}()")

    def bound(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
        """(parameter, argument) pairs in signature order, as ``bind`` + ``apply_defaults`` give them."""
        names = self._all_positional
        if names is not None and not kwargs and len(args) == len(names):
            pairs = list(zip(names, args, strict=True))  # the common call: every parameter by position (bind() is 4 µs)
        else:
            bound = self._signature.bind(*args, **kwargs)
            bound.apply_defaults()
            pairs = list(bound.arguments.items())
        if not self._ignore:
            return pairs
        return [(name, self._without_ignored(name, value)) for name, value in pairs if name not in self._ignore]

    def _without_ignored(self, name: str, value: Any) -> Any:
        """``**kwargs`` without the ignored names; any other argument as it is."""
        if name != self._var_keyword:
            return value
        return {key: item for key, item in value.items() if key not in self._ignore}

    def digest(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The SHA-256 (hex) of the call's arguments: the same in every process and on every machine.

        ``TypeError`` if the arguments do not fit the signature, or if one cannot
        be encoded (the message names it and says what to do).
        """
        if self._key is not None:
            return self._digest_of_key(self._key, args, kwargs)
        parts = []
        for name, value in self.bound(args, kwargs):
            try:
                encoded = encode(value)
            except Undigestible as error:
                if value is not self._signature.parameters[name].default:
                    raise _undigestible_error(self._function_name, name, error) from None
                encoded = b"d"  # left at a sentinel default: the default is part of the code, not the data
            parts.append(text(name) + encoded)
        return hashlib.sha256(b"".join(parts)).hexdigest()

    def _digest_of_key(self, key: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The digest of what the ``key`` function returns for these arguments."""
        self._signature.bind(*args, **kwargs)  # the call must fit the function, not only the key function
        mapped = key(*args, **kwargs)
        try:
            return hashlib.sha256(b"k" + encode(mapped)).hexdigest()
        except Undigestible as error:
            raise _undigestible_error(self._function_name, "key(...) result", error) from None

    def summary(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """A short text of the call's arguments (``x=4, power=2``), for people; never parsed."""
        try:
            pairs = self.bound(args, kwargs)
        except TypeError:
            return ""
        return ", ".join(f"{name}={_SUMMARY.repr(value)}" for name, value in pairs)[:300]
