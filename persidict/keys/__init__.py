"""Keys: safe characters, key tuples and digest suffixes (imports nothing else of persidict)."""
