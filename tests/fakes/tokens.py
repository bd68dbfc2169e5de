"""Fake: a ``TokenCounter`` that counts whitespace-separated words, so every estimate in a test is predictable."""

from __future__ import annotations

__all__ = ["WordTokenCounter"]


class WordTokenCounter:
    """One token per word; ``texts`` keeps what was counted (non-empty texts only)."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def count(self, text: str) -> int:
        if text:
            self.texts.append(text)
        return len(text.split())
