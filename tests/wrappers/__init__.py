"""Tests of the composed stores in persidict.wrappers, and the contract suite run through the cached ones."""
