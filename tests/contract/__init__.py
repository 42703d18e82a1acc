"""The contract suite every store must pass (see tests/conftest.py for the store kinds)."""
