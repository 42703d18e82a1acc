"""Entry point for ``python -m persidict``."""

from .cli import main

raise SystemExit(main())
