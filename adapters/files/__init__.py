"""Driven adapters on the local file system (the embedded default media store)."""
