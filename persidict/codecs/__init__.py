"""Codecs: how a value becomes the bytes of one file or object, and back (imports nothing else of persidict)."""
