"""Entry point for ``python -m persidict``."""

from .pipelines.cli import main

raise SystemExit(main())
