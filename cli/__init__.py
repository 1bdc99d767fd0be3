"""Command groups of `starter.py` (the entry point), one module per group."""
