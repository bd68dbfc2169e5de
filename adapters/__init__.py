"""Adapters: one folder per technology, each implementing ports. Adapters never import each other or entrypoints."""
