"""The normalized code of one function or class: its AST without docstrings, comments or layout.

``function_code(func)`` and ``class_code(cls)`` return a ``Code``: the digest
of the normalized AST, the global names the code may read, and the names it
declares ``global`` or ``nonlocal`` (state it writes, not inputs).  The
source comes from ``linecache``, which also holds the cells of an IPython
kernel, so notebook functions have source like any module's.

Normalization: the AST is serialized field by field, skipping line numbers,
comments and layout (the AST has none), docstrings, empty fields (so a field
that a later Python adds as empty changes nothing) and decorators that name
``memoize`` (its options, a store or a lease, do not change results).  The
decorators of the memoized function itself are skipped entirely: the
decorators above ``@memoize`` wrap the memoized function, those below it
made the object memoize fingerprints (their wrappers are followed as objects).

A function's normalized text is remembered by that text, in this process and
on disk (``code_cache.py``): a re-run cell, a restarted kernel or a new worker
running code seen before parses nothing.  Only a function's own lines are
parsed, never its whole module; a class or a lambda parses its file, and is
remembered by the whole file's text (and where in it it is).

When the source cannot be found or does not match the running code (a
function made by ``exec``; a file edited after this process started whose
text does not compile to the running code), the fallback is the compiled
code: bytecode, constants and names, recursively, with the Python version,
as exact but changing with the interpreter's version.
"""

from __future__ import annotations

import ast
import dis
import hashlib
import linecache
import os
import sys
import time
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import code_cache
from .code_cache import Normalized

__all__ = ["Code", "class_code", "function_code"]

_SKIPPED_FIELDS = frozenset({"ctx", "type_comment", "kind"})
"""AST fields that never change what code does (``kind`` is the ``u`` prefix of a string)."""

_DOCUMENTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)


@dataclass(frozen=True)
class Code:
    """The normalized code of a function or class, and the names it may read or declares as state."""

    digest: bytes
    names: frozenset[str]
    attributes: frozenset[str]
    state: frozenset[str]
    from_source: bool


# --- normalizing an AST ---------------------------------------------------------------------


def _has_docstring(node: ast.AST) -> bool:
    body = getattr(node, "body", None)
    if not isinstance(node, _DOCUMENTED) or not body or not isinstance(body[0], ast.Expr):
        return False
    first = body[0].value
    return isinstance(first, ast.Constant) and isinstance(first.value, str)


def _names_memoize(decorator: ast.expr) -> bool:
    """Whether a decorator is ``memoize(...)`` or ``something.memoize(...)``."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "memoize") or (
        isinstance(target, ast.Attribute) and target.attr == "memoize"
    )


_FIELDS: dict[type, tuple[str, ...]] = {}
"""The fields that count, per node class (computed once per class)."""


def _fields_of(kind: type) -> tuple[str, ...]:
    fields = _FIELDS.get(kind)
    if fields is None:
        fields = _FIELDS[kind] = tuple(name for name in kind._fields if name not in _SKIPPED_FIELDS)  # type: ignore[attr-defined]
    return fields


def _list_field(node: ast.AST, field: str, value: list[Any], top: ast.AST) -> list[Any]:
    """A list field as it counts: decorators filtered, the docstring dropped."""
    if field == "decorator_list":
        return [] if node is top else [item for item in value if not _names_memoize(item)]
    if field == "body" and _has_docstring(node):
        return value[1:]
    return value


def normalize(node: ast.AST) -> Normalized:
    """The digest of ``node`` normalized, with the names it loads and the names it declares as state.

    Iterative (a deeply nested expression cannot exhaust the recursion limit): the
    stack holds nodes still to serialize and tokens already made, pushed in reverse.
    """
    tokens: list[str] = []
    names: set[str] = set()
    attributes: set[str] = set()
    state: set[str] = set()
    stack: list[Any] = [node]
    push, pop, emit = stack.append, stack.pop, tokens.append
    while stack:
        item = pop()
        kind = item.__class__
        if kind is str:
            emit(item)
            continue
        if kind is ast.Name:
            names.add(item.id)
        elif kind is ast.Attribute:
            attributes.add(item.attr)
        elif kind is ast.Global or kind is ast.Nonlocal:
            state.update(item.names)
        emit(kind.__name__)
        for field in reversed(_fields_of(kind)):
            value = getattr(item, field, None)
            if value is None:
                continue
            if value.__class__ is list:
                value = _list_field(item, field, value, node)
                if not value:
                    continue
                push("]")
                for element in reversed(value):
                    push(element if isinstance(element, ast.AST) else repr(element))
                push("[")
            else:
                push(value if isinstance(value, ast.AST) else repr(value))
            push(field)
    digest = hashlib.sha256("\x00".join(tokens).encode("utf-8", "surrogatepass")).digest()
    return Normalized(digest, frozenset(names), frozenset(attributes), frozenset(state))


# --- finding source -------------------------------------------------------------------------


def _last_line(code: types.CodeType) -> int:
    """The last line any instruction of ``code`` (or of the code nested in it) starts on.

    A statement that runs over several lines ends on lines indented deeper than
    its def, which ``_block`` takes in.
    """
    last = max((line for _, _, line in code.co_lines() if line is not None), default=code.co_firstlineno)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            last = max(last, _last_line(const))
    return last


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], first: int, last: int) -> list[str]:
    """Lines ``first..last`` (1-based), extended over the block's trailing lines (blank, comments, deeper)."""
    depth = _indent(lines[first - 1])
    while last < len(lines):
        line = lines[last]
        if line.strip() and not line.lstrip().startswith("#") and _indent(line) <= depth:
            break
        last += 1
    return lines[first - 1 : last]


def _parse_block(block: list[str]) -> ast.stmt | None:
    """The one statement an indented or unindented block of lines holds, or None if it does not parse."""
    text = "".join(block)
    indented = _indent(block[0]) > 0
    try:
        tree = ast.parse("if 1:\n" + text if indented else text)
    except SyntaxError:
        return None
    body = tree.body[0].body if indented else tree.body  # type: ignore[attr-defined]
    return body[0] if body else None


_PARSED: dict[str, tuple[list[str], ast.Module | None, dict[str, list[ast.AST]]]] = {}
"""filename -> (its lines, as linecache holds them; their AST; qualified name -> defs of that name)."""


def _definitions(tree: ast.Module) -> dict[str, list[ast.AST]]:
    """Every class and function of a module by qualified name (``f.<locals>.g``, ``C.m``)."""
    found: dict[str, list[ast.AST]] = {}
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                found.setdefault(name, []).append(child)
                inner = name + (".<locals>." if not isinstance(child, ast.ClassDef) else ".")
                stack.append((child, inner))
            else:
                stack.append((child, prefix))
    return found


def _parsed_file(filename: str, module_globals: dict[str, Any] | None) -> tuple[ast.Module | None, dict[str, Any]]:
    """The AST of a whole file (or notebook cell) and its definitions, parsed once per version of its text."""
    linecache.checkcache(filename)  # a file edited on disk is read again
    lines = linecache.getlines(filename, module_globals)
    cached = _PARSED.get(filename)
    if cached is not None and cached[0] is lines:
        return cached[1], cached[2]
    try:
        tree: ast.Module | None = ast.parse("".join(lines)) if lines else None
    except SyntaxError:
        tree = None
    definitions = _definitions(tree) if tree is not None else {}
    _PARSED[filename] = (lines, tree, definitions)
    return tree, definitions


# --- functions ------------------------------------------------------------------------------


def _lambda_code(code: types.CodeType, globals_: dict[str, Any], whole_decorators: bool) -> Normalized | None:
    """A lambda's normalized code, remembered by the text of its file and its position in it."""
    line = code.co_firstlineno
    column = next((col for start, _, col, _ in code.co_positions() if start == line and col), None)
    variant = "whole lambda" if whole_decorators else "lambda"
    entry = code_cache.entry_name(variant, f"{line}:{column}", _file_text(code.co_filename, globals_))

    def compute() -> Normalized | None:
        node = _lambda_node(code.co_filename, globals_, line, column)
        return _normalize_def(node, whole_decorators) if node is not None else None

    return _remembered(entry, compute)


def _file_text(filename: str, module_globals: dict[str, Any] | None) -> str:
    linecache.checkcache(filename)  # a file edited on disk is read again
    return "".join(linecache.getlines(filename, module_globals))


def _lambda_node(filename: str, globals_: dict[str, Any], line: int, column: int | None) -> ast.AST | None:
    """The ``lambda`` on ``line`` of a file whose body holds ``column`` (its code's first instruction)."""
    tree, _ = _parsed_file(filename, globals_)
    if tree is None:
        return None
    candidates = [node for node in ast.walk(tree) if isinstance(node, ast.Lambda) and node.lineno == line]
    if len(candidates) > 1 and column is not None:
        body = [n for n in candidates if n.body.col_offset <= column < (n.body.end_col_offset or 0)]
        candidates = body or candidates
    return candidates[0] if len(candidates) == 1 else None


def _function_source(code: types.CodeType, globals_: dict[str, Any]) -> list[str]:
    """The lines of the function whose code this is (from its first decorator), [] if there are none."""
    linecache.checkcache(code.co_filename)
    lines = linecache.getlines(code.co_filename, globals_)
    first = code.co_firstlineno
    return _block(lines, first, _last_line(code)) if lines and first <= len(lines) else []


def _parse_function(code: types.CodeType, block: list[str]) -> ast.AST | None:
    """The def in ``block``, if it is the def of this code (not, say, a file edited since it was imported)."""
    node = _parse_block(block)
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name != code.co_name:
        return None
    return node


def _bytecode_digest(code: types.CodeType, hasher: Any) -> None:
    """Feed ``hasher`` the compiled code: instructions, names, flags and constants, nested code included."""
    hasher.update(code.co_code)
    for names in (code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars):
        hasher.update("\x00".join(names).encode() + b"\x01")
    hasher.update(b"%d,%d,%d,%d" % (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _bytecode_digest(const, hasher)
        else:
            hasher.update(f"{type(const).__name__}:{const!r}\x02".encode("utf-8", "surrogatepass"))


def _all_names(code: types.CodeType) -> set[str]:
    """The names (globals and attributes) that ``code`` and the code nested in it use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _all_names(const)
    return names


_STATE_WRITES = frozenset({"STORE_DEREF", "DELETE_DEREF", "STORE_GLOBAL", "DELETE_GLOBAL"})


def _written_state(code: types.CodeType) -> set[str]:
    """Closure variables and globals that ``code`` (or code nested in it) assigns: ``nonlocal``/``global`` state."""
    written = {i.argval for i in dis.get_instructions(code) if i.opname in _STATE_WRITES}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            written |= _written_state(const) & set(code.co_cellvars + code.co_freevars + code.co_names)
    return written


def _compiled(code: types.CodeType) -> Code:
    """The fallback: a digest of the compiled code, with the Python version (bytecode differs between them)."""
    hasher = hashlib.sha256(b"bytecode %d.%d\x00" % sys.version_info[:2])
    _bytecode_digest(code, hasher)
    names = frozenset(_all_names(code))
    return Code(hasher.digest(), names, names, frozenset(_written_state(code)), False)


_BY_CODE: dict[tuple[int, bool], tuple[weakref.ref[types.CodeType], Code]] = {}
"""Code objects never change: their normalized form is computed once.  Keyed by identity, not by
equality: equal code objects can come from different source (an annotation, ``2 * 3`` against ``6``)."""

_BY_TEXT: dict[str, Normalized] = {}
"""The normalized form of a function's source text by its ``code_cache`` entry name: a re-run notebook
cell or a reloaded module parses nothing (nor does a new process: ``code_cache`` keeps them on disk)."""

_CACHE_SIZE = 4096


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


def function_code(func: types.FunctionType, *, whole_decorators: bool = False) -> Code:
    """The normalized code of ``func``; ``whole_decorators`` skips all its decorators (the memoized function).

    ``names`` holds only names the compiled code really looks up (not its locals).
    """
    code = func.__code__
    known = _BY_CODE.get((id(code), whole_decorators))
    if known is not None and known[0]() is code:
        return known[1]
    result = _function_code(func, whole_decorators)
    _remember(_BY_CODE, (id(code), whole_decorators), (weakref.ref(code), result))
    return result


def _function_code(func: types.FunctionType, whole_decorators: bool) -> Code:
    code = func.__code__
    if code.co_name == "<lambda>":
        normalized = _lambda_code(code, func.__globals__, whole_decorators)
    else:
        normalized = _from_source(code, func.__globals__, whole_decorators)
    if normalized is None:
        return _compiled(code)
    used = _all_names(code)  # the text's names, less those the compiled code keeps local
    return Code(normalized.digest, normalized.names & used, normalized.attributes & used, normalized.state, True)


def _normalize_def(node: ast.AST, whole_decorators: bool) -> Normalized:
    return normalize(node if whole_decorators else _Wrapper(node))


def _from_source(code: types.CodeType, globals_: dict[str, Any], whole_decorators: bool) -> Normalized | None:
    """The normalized def of ``code`` from its source text (None without one), parsed once per machine.

    A text already normalized (in this process, else in ``code_cache`` on disk)
    is not parsed again: the entry is named by the text and the def's name, so
    it is the normalization of exactly this def.  A file edited after this
    process started is parsed and checked against the running code instead.
    """
    block = _function_source(code, globals_)
    if not block:
        return None
    if _edited_since_start(code.co_filename):
        node = _parse_function(code, block)
        return _normalize_def(node, whole_decorators) if node is not None and _compiles_to(node, code) else None
    entry = code_cache.entry_name("whole" if whole_decorators else "memoize", code.co_name, "".join(block))

    def compute() -> Normalized | None:
        node = _parse_function(code, block)
        return _normalize_def(node, whole_decorators) if node is not None else None

    return _remembered(entry, compute)


def _remembered(entry: str, compute: Callable[[], Normalized | None]) -> Normalized | None:
    """The normalized code of ``entry`` from this process's memory, else the code cache on disk, else
    ``compute()`` (then kept in both; None, for text that is not the definition sought, is not kept)."""
    known = _BY_TEXT.get(entry) or code_cache.read(entry)
    if known is None:
        known = compute()
        if known is None:
            return None
        code_cache.write(entry, known)
    _remember(_BY_TEXT, entry, known)
    return known


def _process_start() -> float:
    """When this process started (wall clock): from /proc on Linux, else when this module was loaded."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/stat") as system:
            ticks = int(stat.read().rpartition(")")[2].split()[19])
            boot = next(float(line.split()[1]) for line in system if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


_STARTED = _process_start()


def _edited_since_start(filename: str) -> bool:
    """Whether ``filename`` changed after this process started (so code loaded from it may be older)."""
    try:
        return os.stat(filename).st_mtime >= _STARTED
    except OSError:
        return False  # no file (a notebook cell, held by linecache as it ran)


def _bytecode(code: types.CodeType) -> bytes:
    hasher = hashlib.sha256()
    _bytecode_digest(code, hasher)
    return hasher.digest()


def _compiles_to(node: ast.AST, code: types.CodeType) -> bool:
    """Whether the def ``node`` compiles to ``code`` (instructions, names, constants): the text is this code.

    A closure is compiled inside a function that defines its free variables, as it was; a method
    that uses ``super()`` compiles differently on its own: it then counts as not matching, and
    falls back to its compiled code, which is exact.
    """
    body: list[ast.stmt] = [node]  # type: ignore[list-item]
    if code.co_freevars:
        cells = ast.Assign(targets=[ast.Name(name, ast.Store()) for name in code.co_freevars], value=ast.Constant(None))
        body = [ast.FunctionDef("enclosing", ast.arguments([], [], None, [], [], None, []), [cells, *body], [], None)]
    module = ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))
    try:
        compiled = compile(module, code.co_filename, "exec", dont_inherit=True)  # not our __future__ flags
    except (SyntaxError, ValueError, TypeError):
        return False
    found = _code_named(compiled, code.co_name, depth=2 if code.co_freevars else 1)
    return found is not None and _bytecode(found) == _bytecode(code)


def _code_named(code: types.CodeType, name: str, depth: int) -> types.CodeType | None:
    """The code object ``name`` among the constants of ``code``, ``depth`` levels down (None if not one)."""
    found = [const for const in code.co_consts if isinstance(const, types.CodeType)]
    if len(found) != 1:
        return None
    if depth > 1:
        return _code_named(found[0], name, depth - 1)
    return found[0] if found[0].co_name == name else None


class _Wrapper(ast.AST):
    """A node above a def, so that ``normalize`` treats the def as an inner node (memoize decorators only)."""

    _fields = ("node",)

    def __init__(self, node: ast.AST) -> None:
        super().__init__()
        self.node = node


# --- classes --------------------------------------------------------------------------------


def _class_file(cls: type) -> tuple[str, dict[str, Any] | None] | None:
    """Where a class's source is: the file of one of its methods (right even if its module was
    reloaded since, and the only way in a notebook), else its module's file."""
    for member in vars(cls).values():
        function = getattr(member, "__func__", member)
        code = getattr(function, "__code__", None)
        if isinstance(code, types.CodeType):
            return code.co_filename, getattr(function, "__globals__", None)
    module = sys.modules.get(cls.__module__)
    filename = getattr(module, "__file__", None)
    return (filename, vars(module)) if isinstance(filename, str) else None


def _method_lines(cls: type) -> set[int]:
    """The first lines of a class's methods (to tell apart two classes of one qualified name)."""
    lines = set()
    for member in vars(cls).values():
        code = getattr(getattr(member, "__func__", member), "__code__", None)
        if isinstance(code, types.CodeType):
            lines.add(code.co_firstlineno)
    return lines


def class_code(cls: type) -> Code | None:
    """The normalized code of a class (``names``: every name its body and methods load), or None without source.

    Remembered (in memory and in ``code_cache``) by the text of its whole file, its qualified
    name and its methods' lines: what picks the class out of the file.
    """
    where = _class_file(cls)
    if where is None:
        return None
    methods = _method_lines(cls)
    text = _file_text(*where)
    entry = code_cache.entry_name("class", cls.__qualname__, ",".join(map(str, sorted(methods))), text)
    normalized = _remembered(entry, lambda: _normalize_class(cls.__qualname__, methods, where))
    if normalized is None:
        return None
    return Code(normalized.digest, normalized.names, normalized.attributes, normalized.state, True)


def _normalize_class(qualname: str, methods: set[int], where: tuple[str, dict[str, Any] | None]) -> Normalized | None:
    """The class ``qualname`` of a file normalized; of several of that name, the one holding ``methods``' lines."""
    _, definitions = _parsed_file(*where)
    candidates = [node for node in definitions.get(qualname, []) if isinstance(node, ast.ClassDef)]
    if len(candidates) > 1 and methods:
        candidates = [n for n in candidates if any(n.lineno <= line <= (n.end_lineno or 0) for line in methods)]
    return normalize(_Wrapper(candidates[-1])) if candidates else None
