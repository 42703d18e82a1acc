"""What every reference script does first: make sure it runs persidict 0.309.0, read its spec."""

from __future__ import annotations

import importlib.metadata
import json
import sys
from typing import Any

REFERENCE_VERSION = "0.309.0"


def spec_from_argv() -> dict[str, Any]:
    """The JSON spec given as the only argument, after checking which persidict this is.

    Raises:
        SystemExit: the interpreter has another persidict (ours, most likely).
    """
    version = importlib.metadata.version("persidict")
    if version != REFERENCE_VERSION:
        raise SystemExit(f"expected persidict {REFERENCE_VERSION} here, found {version}")
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} '<JSON spec>'")
    spec: dict[str, Any] = json.loads(sys.argv[1])
    return spec
