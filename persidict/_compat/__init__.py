"""Compatibility with persidict 0.x: its module paths."""
