"""Driven adapter package: token counting with tiktoken (the bundled, offline ``cl100k_base`` encoding)."""

from adapters.tiktoken.counter import TiktokenTokenCounter

__all__ = ["TiktokenTokenCounter"]
