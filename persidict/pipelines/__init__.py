"""Pipelines: what is built on stores (memoize, copying, the command line, the demo); loaded on first use."""
