"""Driven port: a tokenizer that counts tokens in text (to estimate usage a vendor never reported)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["TokenCounter"]


class TokenCounter(Protocol):
    """Counts tokens the way some tokenizer does. Pure CPU work, no I/O: a large text may take a while (about
    0.1 s per MB), so callers on an event loop count large texts in a thread."""

    def count(self, text: str) -> int:
        """Tokens in ``text`` (special-token markers are counted as ordinary text, never rejected)."""
        ...
