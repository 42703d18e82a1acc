"""``memoize(store)``: cache a function's results in any PersiDict, computed once cluster-wide.

    @memoize("s3://my-bucket/cache")
    def train(config: dict, data: pd.DataFrame, seed: int = 0) -> Model: ...

The first call with some arguments runs the body and stores the result; every
later call with equal arguments, in any process on any machine that opens the
same store, returns the stored result without running the body.  Callers that
arrive while the body runs wait for its result instead of computing it again.

The package, by job:

* ``decorator.py``: ``memoize`` and its options; opening a store from a path or URL;
* ``function.py``: ``MemoizedFunction``: a call, a miss, the stored results;
* ``code.py`` and ``source.py``: the fingerprint of the code a function runs; ``code_cache.py``: the
  normalized code of every text seen, kept per machine (a new process parses nothing it has seen);
* ``arguments.py``, ``encoding.py``, ``data.py``, ``canonical.py``: the digest of a call's arguments;
* ``lease.py``: the claim protocol (one claimer per key among all processes);
* ``records.py``: ``Lease`` and ``Result``, what the store holds;
* ``waiting.py`` and ``html.py``: what a person sees (a waiting notice, Jupyter's view).

Keys are ``("memoize", <module>, <qualified name>, <code version>, <digest>)``:
the code version is ``code=<fingerprint>`` (or ``v=<version>`` with
``version=``), the digest the SHA-256 of the call's canonically encoded
arguments.  docs/pipelines.md#memoize says what is in a key and what is not.
"""

from __future__ import annotations

from .decorator import memoize, open_store
from .function import CachedCall, CallInfo, MemoizedFunction, MemoizeStats
from .records import Lease, Result

__all__ = ["CachedCall", "CallInfo", "Lease", "MemoizeStats", "MemoizedFunction", "Result", "memoize", "open_store"]
