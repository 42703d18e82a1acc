"""Presets: the public store classes as thin constructors (local folders, memory, S3, the null store)."""
