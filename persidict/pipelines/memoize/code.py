"""The fingerprint of a memoized function's code: its own and the code and constants it reaches.

``fingerprint(func)`` walks from ``func`` over what its code refers to:

* functions and classes of *your* code (the same module or notebook, and any
  module that is not installed: not under the standard library or a
  site-packages folder, and not persidict) count by their normalized code
  (``source.py``), and are walked in turn, so a helper's helper counts too;
  recursion and cycles are walked once;
* installed functions, classes and modules count by name
  (``numpy.linalg.norm``), and, with ``package_versions=True``, by the
  version of their distribution too;
* module-level values (constants, lookup tables, DataFrames) count by their
  canonical encoding (``encoding.py``), and objects without one by their type
  (a logger, a client, a store: their class is walked if it is yours);
* variables a closure reads count like module-level names; variables it
  declares ``nonlocal`` (and globals declared ``global``) are state it writes,
  not inputs, and do not count;
* wrappers (``functools.wraps``, ``lru_cache``, memoized functions) count by
  their type and what they wrap (``__wrapped__``); ``functools.partial`` by its
  function and arguments.

The fingerprint remembers every binding it resolved (a module's name, a
closure's cell, a function's code) and is recomputed when one changes: a
notebook cell that redefines a helper or a constant changes the fingerprint
of every memoized function that reaches it, without touching the memoized
function itself.  In-place mutation of a module-level container is not seen.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import os
import site
import sys
import sysconfig
import types
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .canonical import Undigestible
from .encoding import encode, module_name
from .source import Code, class_code, function_code

__all__ = ["Fingerprint", "fingerprint"]

_MISSING = object()
"""What an unbound name resolves to (in a binding: the name must stay unbound)."""

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class Fingerprint:
    """The digest of a function's code and what it reaches, and the bindings it was computed from."""

    digest: str
    names: list[tuple[dict[str, Any], str, Any]] = field(default_factory=list)
    cells: list[tuple[Any, Any]] = field(default_factory=list)
    codes: list[tuple[Any, Any]] = field(default_factory=list)
    without_source: list[str] = field(default_factory=list)

    def is_current(self) -> bool:
        """Whether every binding still holds the object it held (a dict lookup or two per binding)."""
        for namespace, name, value in self.names:
            if namespace.get(name, _MISSING) is not value:
                return False
        for cell, value in self.cells:
            if _cell_value(cell) is not value:
                return False
        for reference, code in self.codes:
            function = reference()
            if function is not None and function.__code__ is not code:
                return False
        return True


def _cell_value(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell: the variable is not assigned yet
        return _MISSING


# --- your code or installed code ------------------------------------------------------------


@functools.cache
def _installed_roots() -> tuple[str, ...]:
    """Folders whose files are installed code: the standard library, site-packages, persidict itself."""
    paths = {sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(getattr(site, "getsitepackages", list)())
    paths.add(site.getusersitepackages() if site.ENABLE_USER_SITE else "")
    paths.add(_PACKAGE_DIR)
    return tuple(os.path.realpath(path) + os.sep for path in paths if path)


@functools.lru_cache(maxsize=4096)
def is_installed_file(filename: str | None) -> bool:
    """Whether code from ``filename`` is installed code (frozen and builtin modules are)."""
    if not filename or filename.startswith("<frozen"):
        return True
    if filename.startswith("<"):  # <string>, <stdin>, an interactive cell: your code
        return False
    return os.path.realpath(filename).startswith(_installed_roots())


def _is_your_function(value: Any) -> bool:
    return isinstance(value, types.FunctionType) and not is_installed_file(value.__code__.co_filename)


def _is_your_class(cls: type) -> bool:
    module = sys.modules.get(cls.__module__)
    if module is None or cls.__module__ == "builtins":
        return False
    filename = getattr(module, "__file__", None)
    if filename is None:  # a notebook's __main__ has no file
        return cls.__module__ in ("__main__", "__mp_main__")
    return isinstance(filename, str) and not is_installed_file(filename)


def _is_your_module(module: types.ModuleType) -> bool:
    filename = getattr(module, "__file__", None)
    return isinstance(filename, str) and not is_installed_file(filename)


@functools.cache
def _distributions() -> dict[str, list[str]]:
    import importlib.metadata

    return dict(importlib.metadata.packages_distributions())


@functools.lru_cache(maxsize=1024)
def _package_version(module: str) -> str:
    """``==<version>`` of the distribution that installs top-level package of ``module`` ('' if none)."""
    import importlib.metadata

    names = _distributions().get(module.partition(".")[0], [])
    try:
        return "".join(f"=={name} {importlib.metadata.version(name)}" for name in sorted(names))
    except importlib.metadata.PackageNotFoundError:
        return ""


def _identity(value: Any) -> str:
    """``module.qualname`` of a function or class (its name for a module)."""
    if isinstance(value, types.ModuleType):
        return value.__name__
    module = getattr(value, "__module__", None) or "?"
    return f"{module_name(module)}.{getattr(value, '__qualname__', getattr(value, '__name__', '?'))}"


# --- the walk -------------------------------------------------------------------------------


class _Walk:
    """One traversal from a root: the records of every unit reached, in a deterministic order."""

    def __init__(self, root: Any, package_versions: bool) -> None:
        self._root = root
        self._package_versions = package_versions
        self._queue: deque[Any] = deque()
        self._seen: set[int] = set()
        self._keep: list[Any] = []  # what ``_seen`` holds ids of, alive until the walk ends
        self._records: list[bytes] = []
        self.fingerprint = Fingerprint("")

    def run(self) -> Fingerprint:
        self._records.append(self._describe(self._root))
        while self._queue:
            unit = self._queue.popleft()
            if isinstance(unit, type):
                self._class(unit)
            else:
                self._function(unit)
        self.fingerprint.digest = hashlib.sha256(b"\x00".join(self._records)).hexdigest()
        return self.fingerprint

    def _visit(self, unit: Any) -> None:
        if id(unit) not in self._seen:
            self._seen.add(id(unit))
            self._keep.append(unit)
            self._queue.append(unit)

    def _external(self, value: Any) -> bytes:
        module = getattr(value, "__name__" if isinstance(value, types.ModuleType) else "__module__", None) or ""
        version = _package_version(module) if self._package_versions and module else ""
        return b"ext:" + (_identity(value) + version).encode()

    def _describe(self, value: Any) -> bytes:
        """How a referenced object counts in the fingerprint (your code is queued to be walked)."""
        if value is _MISSING:
            return b"unbound"
        if _is_your_function(value) or (isinstance(value, type) and _is_your_class(value)):
            self._visit(value)
            return b"code:" + _identity(value).encode()
        if isinstance(value, (type, types.ModuleType, types.BuiltinFunctionType, types.FunctionType)):
            return b"module:" + value.__name__.encode() if _is_module_of_yours(value) else self._external(value)
        wrapped = getattr(value, "__wrapped__", None)
        if wrapped is not None and not isinstance(value, type):
            return b"wraps:" + _identity(type(value)).encode() + b"/" + self._describe(wrapped)
        if isinstance(value, functools.partial):
            return b"partial:" + self._describe(value.func) + self._constant((value.args, value.keywords))
        return self._constant(value)

    def _constant(self, value: Any) -> bytes:
        """A value by its canonical encoding, or by its type; its class is walked if it is yours
        (a module-level ``CONFIG = Settings(...)`` counts its fields and its methods' code)."""
        kind = type(value)
        try:
            encoded = b"value:" + hashlib.sha256(encode(value)).digest()
        except Undigestible:
            return b"object:" + self._describe(kind)
        return encoded + (b":" + self._describe(kind) if _is_your_class(kind) else b"")

    def _function(self, func: types.FunctionType) -> None:
        code = function_code(func, whole_decorators=func is self._root)
        self.fingerprint.codes.append((weakref.ref(func), func.__code__))  # weak: the cache is keyed by func
        self._unit_record(func, code, func.__globals__)
        if not code.from_source:
            self.fingerprint.without_source.append(_identity(func))
        closure = zip(func.__code__.co_freevars, func.__closure__ or (), strict=True)
        for name, cell in sorted(closure, key=lambda pair: pair[0]):
            if name not in code.state:
                value = _cell_value(cell)
                self.fingerprint.cells.append((cell, value))
                self._records.append(b"closure:" + name.encode() + b"=" + self._describe(value))
        if "." in func.__qualname__ and "<locals>" not in func.__qualname__:
            self._enclosing_class(func)

    def _enclosing_class(self, func: types.FunctionType) -> None:
        """A method counts its class's code too: ``self.helper()`` calls are invisible to name lookups."""
        first, *inner = func.__qualname__.split(".")[:-1]
        owner: Any = func.__globals__.get(first)
        for part in inner:
            owner = getattr(owner, part, None)
        if isinstance(owner, type):
            self._records.append(b"method-of:" + self._describe(owner))

    def _class(self, cls: type) -> None:
        code = class_code(cls)
        namespace = _class_namespace(cls)
        if code is not None:
            self._unit_record(cls, code, namespace)
            return
        self.fingerprint.without_source.append(_identity(cls))
        self._records.append(b"class:" + _identity(cls).encode())  # no source: its members, in order
        for base in cls.__bases__:
            self._records.append(b"base:" + self._describe(base))
        for name, member in vars(cls).items():
            if not name.startswith("__") or name in ("__init__", "__call__"):
                self._records.append(name.encode() + b"=" + self._describe(getattr(member, "__func__", member)))

    def _unit_record(self, unit: Any, code: Code, namespace: dict[str, Any]) -> None:
        """The unit's code, then every global name it reads and what that name is bound to."""
        self._records.append(b"unit:" + _identity(unit).encode() + b":" + code.digest)
        for name in sorted(code.names - code.state):
            value = namespace.get(name, _MISSING)
            if value is _MISSING and hasattr(builtins, name):
                value = _MISSING  # a builtin, as long as no global of that name appears
            self.fingerprint.names.append((namespace, name, value))
            self._records.append(name.encode() + b"=" + self._describe(value))
            if isinstance(value, types.ModuleType) and _is_your_module(value):
                self._module_attributes(value, code.attributes)

    def _module_attributes(self, module: types.ModuleType, attributes: frozenset[str]) -> None:
        """``helpers.compute``: the attributes of your module that the unit's code may use."""
        namespace = vars(module)
        for name in sorted(attributes):
            if name in namespace:
                value = namespace[name]
                self.fingerprint.names.append((namespace, name, value))
                self._records.append(f"{module.__name__}.{name}=".encode() + self._describe(value))


def _class_namespace(cls: type) -> dict[str, Any]:
    """The globals a class's body and methods read: a method's ``__globals__``, else its module's."""
    for member in vars(cls).values():
        namespace = getattr(getattr(member, "__func__", member), "__globals__", None)
        if isinstance(namespace, dict):
            return namespace
    module = sys.modules.get(cls.__module__)
    return vars(module) if module is not None else {}


def _is_module_of_yours(value: Any) -> bool:
    return isinstance(value, types.ModuleType) and _is_your_module(value)


_CACHE: weakref.WeakKeyDictionary[Any, dict[bool, Fingerprint]] = weakref.WeakKeyDictionary()
"""Fingerprints per function object (and ``package_versions``), recomputed when a binding changes."""


def fingerprint(func: Callable[..., Any], *, package_versions: bool = False) -> Fingerprint:
    """The fingerprint of ``func``'s code, computed once per function object while its bindings hold."""
    try:
        known = _CACHE.setdefault(func, {})
    except TypeError:  # not weakly referenceable: computed each time
        known = {}
    cached = known.get(package_versions)
    if cached is not None and cached.is_current():
        return cached
    computed = _Walk(func, package_versions).run()
    known[package_versions] = computed
    return computed
