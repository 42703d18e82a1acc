"""Tests of the composed store classes (write-once, read-through caches, overlapping formats) and their layers."""
