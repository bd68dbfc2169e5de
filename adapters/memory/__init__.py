"""Driven adapters kept in process memory (the embedded default)."""
