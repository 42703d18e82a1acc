"""How big values travel to and from object stores: in parts, and within a budget of bytes.

One frozen record per store (``FsspecDict(..., transfers=Transfers(...))``,
``S3Dict(..., transfers=...)``), read by the object-store backends:

- a value longer than ``part_threshold`` bytes is uploaded in parts of
  ``part_size`` bytes (S3 multipart upload), ``parts_in_flight`` at a time,
  and read back the same way: ``parts_in_flight`` ranges (of one to four
  parts each) fetched concurrently into one buffer;
- a bulk read (``values()``, ``items()``, ``get_many()``, copies) holds at
  most ``read_budget`` bytes of fetched values it has not handed over yet (a
  single value larger than the budget is still fetched, alone).

Smaller values stay one request each.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_PARTS", "MIN_PART_SIZE", "Transfers"]

MiB = 1024**2

MIN_PART_SIZE = 5 * MiB
"""S3's smallest part (every part but the last)."""

MAX_PARTS = 10_000
"""S3's most parts per upload: a value of more than ``MAX_PARTS * part_size`` bytes gets larger parts."""

MAX_PART_SIZE = 5 * 1024**3
"""S3's largest part."""

RANGES_PER_REQUEST = 4
"""A read's request fetches at most this many ``part_size`` ranges at once (every request costs a server
a lookup of the whole object: moto reads all of it again for each range)."""


@dataclass(frozen=True)
class Transfers:
    """Part sizes and byte budgets of one store's transfers (see the module's docstring)."""

    part_threshold: int = 64 * MiB
    part_size: int = 16 * MiB
    parts_in_flight: int = 4
    read_budget: int = 256 * MiB

    def __post_init__(self) -> None:
        if not (isinstance(self.part_size, int) and MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE):
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes "
                             f"(S3's limits), got {self.part_size!r}")
        if not (isinstance(self.part_threshold, int) and self.part_threshold >= self.part_size):
            raise ValueError(f"part_threshold must be at least part_size ({self.part_size}), "
                             f"got {self.part_threshold!r}")
        for name in ("parts_in_flight", "read_budget"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value > 0):
                raise ValueError(f"{name} must be a positive int, got {value!r}")

    def part_size_for(self, size: int) -> int:
        """The part size of a ``size``-byte upload: ``part_size``, or larger to stay within ``MAX_PARTS``."""
        return max(self.part_size, -(-size // MAX_PARTS))

    def range_size_for(self, size: int) -> int:
        """The range each request of a ``size``-byte read fetches: ``parts_in_flight`` requests cover it,
        each between ``part_size`` and ``4 * part_size`` bytes (few requests, each done within ``timeout``)."""
        return min(max(self.part_size, -(-size // self.parts_in_flight)), RANGES_PER_REQUEST * self.part_size)
