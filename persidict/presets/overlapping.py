"""OverlappingMultiDict: several dicts on one storage location, one per serialization format.

For example a FileDirDict tree holding ``k.pkl`` values next to ``k.json``
and ``k.txt`` ones: each format is a separate dict (``omd.pkl``,
``omd.json``, ``omd.txt``) that only sees its own files.
"""

from __future__ import annotations

from typing import Any, NoReturn

from ..core.front import PersiDict, reopen

__all__ = ["OverlappingMultiDict"]

_RESERVED_NAMES = frozenset({"dict_type", "shared_subdicts_params", "individual_subdicts_params", "subdicts_names"})


class OverlappingMultiDict:
    """A set of same-type PersiDicts that differ only in ``serialization_format``.

    Not a PersiDict itself: use the per-format attributes.

    Example:
        >>> import tempfile
        >>> from persidict import FileDirDict
        >>> omd = OverlappingMultiDict(
        ...     dict_type=FileDirDict,
        ...     shared_subdicts_params={"base_dir": tempfile.mkdtemp()},
        ...     pkl={}, json={}, txt={"base_class_for_values": str},
        ... )
        >>> omd.txt["note"] = "hello"
        >>> len(omd.txt), len(omd.pkl)
        (1, 0)
    """

    def __init__(
        self,
        *,
        dict_type: type[PersiDict[Any]],
        shared_subdicts_params: dict[str, Any],
        **individual_subdicts_params: dict[str, Any],
    ) -> None:
        if not issubclass(dict_type, PersiDict):  # a non-class raises TypeError here too
            raise TypeError(f"dict_type must be a PersiDict subclass, got {dict_type!r}")
        if not isinstance(shared_subdicts_params, dict):
            raise TypeError(f"shared_subdicts_params must be a dict, got {type(shared_subdicts_params).__name__}")
        for name, params in individual_subdicts_params.items():
            if not isinstance(params, dict):
                raise TypeError(f"the parameters of sub-dict {name!r} must be a dict, got {type(params).__name__}")
            if name in _RESERVED_NAMES or hasattr(type(self), name):
                raise ValueError(f"{name!r} cannot be a sub-dict name: it is an attribute of OverlappingMultiDict")
        self.dict_type = dict_type
        self.shared_subdicts_params = shared_subdicts_params
        self.individual_subdicts_params = individual_subdicts_params
        self.subdicts_names = list(individual_subdicts_params)
        for name, params in individual_subdicts_params.items():
            sub_dict = dict_type(**{**shared_subdicts_params, **params, "serialization_format": name})
            setattr(self, name, sub_dict)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names __init__ did not set (it also types omd.pkl & co. as Any).
        names = self.__dict__.get("subdicts_names", [])
        raise AttributeError(f"{type(self).__name__} has no attribute or sub-dict {name!r}; sub-dicts: {names}")

    def _refuse_item_access(self) -> NoReturn:
        names = ", ".join(f".{name}" for name in self.subdicts_names)
        raise TypeError(f"{type(self).__name__} does not support item access; use one of its sub-dicts: {names}")

    def __getitem__(self, key: Any) -> NoReturn:
        self._refuse_item_access()

    def __setitem__(self, key: Any, value: Any) -> NoReturn:
        self._refuse_item_access()

    def __delitem__(self, key: Any) -> NoReturn:
        self._refuse_item_access()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dict_type={self.dict_type.__name__}, "
            f"shared_subdicts_params={self.shared_subdicts_params!r}, subdicts_names={self.subdicts_names!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the arguments that reopen the same sub-dicts on the same storage."""
        params = {"dict_type": self.dict_type, "shared_subdicts_params": self.shared_subdicts_params,
                  **self.individual_subdicts_params}
        return reopen, (type(self), params)
