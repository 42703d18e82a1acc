"""Layers: stores wrapped around stores (the append-only and write-once policies, read-through caches)."""
