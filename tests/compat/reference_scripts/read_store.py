"""Read a store with persidict 0.309.0 and compare it with the corpus.

Argument: a JSON spec ``{"kind": "local" | "s3" | "s3_cached", "format": fmt,
"params": {...}}`` (see ``tests/data/legacy_stores.py``). Prints a JSON report
with ``keys_seen``, ``mismatches``, ``missing``, ``extra``, ``len`` and
``expected_len``. S3 stores take their endpoint and credentials from the
standard ``AWS_*`` environment variables.
"""

from __future__ import annotations

import json

from _reference_side import spec_from_argv
from legacy_stores import compare_with_corpus, open_store

if __name__ == "__main__":
    spec = spec_from_argv()
    print(json.dumps(compare_with_corpus(open_store(spec), spec["format"], ours=False)))
