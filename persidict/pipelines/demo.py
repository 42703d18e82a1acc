"""``python -m persidict demo``: the main job, shown as code and what it prints.

Caching an expensive function with ``memoize`` (the second call is instant),
a process pool whose workers share one store, the command line's ``ls`` and
``cp`` with a progress bar, then the same code on S3 (a local moto server from
``persidict.testing.local_s3``).  Every line of code is printed before its
result, as in a Python session, so a reader can copy it; the folder the demo
makes is removed at the end.
"""

from __future__ import annotations

import ast
import linecache
import shlex
import shutil
import subprocess
import sys
from typing import Any

from ..protocol.flags import ITEM_NOT_AVAILABLE

__all__ = ["run_demo", "square_and_count"]


def square_and_count(store: Any, x: int) -> None:
    """The pool's task: store ``x * x`` and count the call, atomically, whatever the other workers do."""
    store["squares", str(x)] = x * x
    store.transform_item("calls", transformer=lambda n: 1 if n is ITEM_NOT_AVAILABLE else n + 1)


_MEMOIZE = '''
@memoize(cache)
def slow_square(x):
    time.sleep(1)  # an expensive computation
    return x * x

start = time.perf_counter()
slow_square(12)
print(f"first call: {time.perf_counter() - start:.2f} s")
start = time.perf_counter()
slow_square(12)  # the same arguments: read from the store, not computed
print(f"second call: {time.perf_counter() - start:.2f} s")
'''

_POOL = '''
from concurrent.futures import ProcessPoolExecutor
from persidict.pipelines.demo import square_and_count  # a pool runs functions it can import
with ProcessPoolExecutor(max_workers=4) as pool:
    futures = [pool.submit(square_and_count, results, x) for x in range(8)]
    for future in futures:
        future.result()  # a worker's exception is raised here, not lost
results["calls"], sorted(results.get_subdict("squares").values())
'''

_TASK = '''# persidict/pipelines/demo.py holds the task:
# def square_and_count(store, x):
#     store["squares", str(x)] = x * x
#     store.transform_item("calls", transformer=lambda n: 1 if n is ITEM_NOT_AVAILABLE else n + 1)'''


class Session:
    """A Python session shown as it runs: each statement is printed (``>>>``), then what it prints or returns."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"__name__": "persidict_demo"}
        self._cells = 0

    def run(self, source: str) -> None:
        """Print and run ``source`` statement by statement; an expression's value is shown as the REPL does."""
        self._cells += 1
        filename = f"<persidict demo {self._cells}>"
        lines = source.strip("\n").splitlines()
        linecache.cache[filename] = (len(source), None, [line + "\n" for line in lines], filename)  # memoize reads it
        shown = 0
        for statement in ast.parse("\n".join(lines), filename).body:
            _print_code(line for line in lines[shown:statement.end_lineno] if line.strip())
            shown = statement.end_lineno or shown
            self._execute(statement, filename)

    def _execute(self, statement: ast.stmt, filename: str) -> None:
        if isinstance(statement, ast.Expr):
            value = eval(compile(ast.Expression(statement.value), filename, "eval"), self.namespace)
            if value is not None:
                print(repr(value))
        else:
            exec(compile(ast.Module([statement], type_ignores=[]), filename, "exec"), self.namespace)


def _print_code(lines: Any) -> None:
    prompt = ">>> "
    for line in lines:
        print(prompt + line if not line.startswith("#") or prompt == "... " else line)
        prompt = "... " if line[:1] in (" ", "@") or line.startswith(("def ", "with ", "for ")) else ">>> "


def _title(text: str) -> None:
    print(f"\n== {text}\n", flush=True)


def _command(*args: str, shown: str | None = None) -> None:
    """Run ``persidict ARGS`` as a user would, printing the command line, its output and its progress bar."""
    print(f"$ persidict {shown or shlex.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "persidict", *args], capture_output=True, text=True, check=False)
    bar = [line for line in done.stderr.replace("\r", "\n").splitlines() if line.strip()]
    if bar:
        print(bar[-1])  # the bar's last state: on a terminal it redraws one line
    print(done.stdout, end="", flush=True)


def _the_main_job(session: Session, where: str, opening: str) -> None:
    """memoize and the pool on one kind of store, opened by ``opening`` (``{name}``: cache, results)."""
    _title(f"{where}: cache an expensive function with memoize")
    session.run(f'cache = {opening.format(name="cache")}')
    session.run(_MEMOIZE)
    _title(f"{where}: a process pool whose workers share one store")
    print(_TASK)
    session.run(f'results = {opening.format(name="results")}')
    session.run(_POOL)


def run_demo() -> None:
    """Run the demo on a temporary folder, then on S3 (a local moto server), printing code and results."""
    session = Session()
    _title("a folder of values: one file per value")
    session.run('import tempfile, time\nfrom persidict import FileDirDict, FsspecDict, memoize\n'
                'folder = tempfile.mkdtemp(prefix="persidict-demo-")\nfolder')
    folder = session.namespace["folder"]
    try:
        _the_main_job(session, "a local folder", 'FileDirDict(f"{{folder}}/{name}")')
        _title("the command line: ls and cp (a progress bar on stderr)")
        _command("ls", f"{folder}/results")
        _command("cp", f"{folder}/results", f"{folder}/copy", "--progress")
        _on_s3(session)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _on_s3(session: Session) -> None:
    """The same code on S3: a local moto server, its URL named."""
    _title("the same code on S3 (a local S3 server: persidict.testing.local_s3)")
    try:
        session.run("from persidict.testing import local_s3\n"
                    "s3 = local_s3()  # moto's S3 server on 127.0.0.1; s3.stop() ends it\n"
                    "s3.endpoint_url")
    except ImportError as exc:
        print(f"skipped: {exc}")
        return
    try:
        _the_main_job(session, "S3", 'FsspecDict("s3://persidict-demo/{name}", storage_options=s3.storage_options)')
        s3 = session.namespace["s3"]
        print(f"\nthe S3 URLs used: s3://persidict-demo/cache and s3://persidict-demo/results at {s3.endpoint_url}\n")
        options = ["-o", f"endpoint_url={s3.endpoint_url}", "-o", "key=persidict-local", "-o", "secret=persidict-local"]
        _command("ls", "s3://persidict-demo/results", *options)
    finally:
        session.run("s3.stop()")
