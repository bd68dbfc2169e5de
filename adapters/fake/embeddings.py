"""Driven adapter: ``FakeEmbeddingProvider``, a deterministic EmbeddingProvider (the ``fake`` vendor's embeddings).

Vectors: a text's vector is drawn from SHAKE-256 of the model's wire name and the text, so the same text gives the
same vector for the same model (and another model gives another), unit-normalised. The full vector has the model's
``embedding_dimensions`` (64 when unset); ``dimensions`` keeps its first N values and normalises again, the way
OpenAI's text-embedding-3 shortens vectors. Usage counts words (at least one per text), so figures are predictable.
``max_batch`` is small (16) so callers' splitting is exercised.

Faults, like ``FakeTextProvider``'s, come from the model's ``default_params`` or, per request, from a marker in any
input text: ``[[fake fake_error=rate_limited fake_retry_after=0 fake_fail_times=1]]``. ``fake_error`` is one of
``FAKE_EMBEDDING_ERRORS``; ``fake_fail_times = N`` fails only the first N calls with the same ``fake_key`` (default:
the model and the texts of the call), which scripts "429, then success" through the real stack.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import Sequence
from typing import Any, Final

from adapters.fake.faults import FailureCounter
from domain.catalog import ModelSpec
from domain.embeddings import EmbeddingResult
from domain.errors import ProviderError, ProviderTimeoutError, RateLimitError, ServiceError, ValidationError
from domain.metering import Units

__all__ = ["FAKE_EMBEDDING_ERRORS", "FakeEmbeddingProvider"]

FAKE_EMBEDDING_ERRORS: Final = ("rate_limited", "provider_error", "overloaded", "timeout", "auth", "too_long")
_DEFAULT_DIMENSIONS: Final = 64
_MARKER: Final = re.compile(r"\[\[fake((?:\s+\w+=[^\s\]]*)*)\s*\]\]")


def _error(kind: str, retry_after: float | None) -> ServiceError:
    match kind:
        case "rate_limited":
            return RateLimitError(
                "fake: rate limited by the vendor", retry_after=retry_after, context={"provider": "fake"}
            )
        case "provider_error":
            return ProviderError("fake", "fake: the vendor failed")
        case "overloaded":
            return ProviderError("fake", "fake: the vendor is overloaded", retryable=True, context={"status": 503})
        case "timeout":
            return ProviderTimeoutError("fake")
        case "auth":
            return ProviderError("fake", "fake: the vendor rejected our credentials")
        case "too_long":
            return ValidationError("input", "fake: an input exceeds the model's token limit")
    raise ValidationError("fake_error", f"unknown fake error {kind!r}; known: {', '.join(FAKE_EMBEDDING_ERRORS)}")


def fake_vector(text: str, model: ModelSpec, dimensions: int | None) -> tuple[float, ...]:
    """The unit vector the fake gives ``text`` under ``model`` (its first ``dimensions`` values, renormalised)."""
    full = model.embedding_dimensions or _DEFAULT_DIMENSIONS
    length = min(dimensions or full, full)
    digest = hashlib.shake_256(f"{model.wire_name}\x00{text}".encode()).digest(2 * length)
    raw = [value / 32768.0 - 1.0 for (value,) in struct.iter_unpack("<H", digest)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return tuple(v / norm for v in raw)


class FakeEmbeddingProvider:
    """The ``fake`` vendor's embeddings; ``calls`` counts calls and ``batches`` records each call's size."""

    def __init__(self, *, name: str = "fake", max_batch: int = 16) -> None:
        self._name = name
        self._max_batch = max_batch
        self._failures = FailureCounter()
        self.calls = 0
        self.batches: list[int] = []

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    @property
    def max_batch(self) -> int:
        """The most inputs one call takes."""
        return self._max_batch

    async def embed(self, inputs: Sequence[str], model: ModelSpec, *, dimensions: int | None) -> EmbeddingResult:
        """Deterministic vectors for ``inputs``, in order; a scripted fault instead when one applies."""
        self.calls += 1
        self.batches.append(len(inputs))
        if len(inputs) > self._max_batch:  # as strict as a vendor: the caller must split
            raise ValidationError("input", f"fake: at most {self._max_batch} inputs per call, got {len(inputs)}")
        options = _options(inputs, model)
        failure = self._failure(options, inputs, model)
        if failure is not None:
            retry_after = options.get("fake_retry_after")
            raise _error(failure, float(retry_after) if retry_after is not None else None)
        vectors = tuple(fake_vector(text, model, dimensions) for text in inputs)
        tokens = sum(max(1, len(text.split())) for text in inputs)
        return EmbeddingResult(vectors, Units(input_tokens=tokens))

    def _failure(self, options: dict[str, Any], inputs: Sequence[str], model: ModelSpec) -> str | None:
        return self._failures.failure(options.get, f"{model.qualified_id}:{chr(0).join(inputs)}")


def _options(inputs: Sequence[str], model: ModelSpec) -> dict[str, Any]:
    """The model's ``default_params``, overridden by ``[[fake key=value ...]]`` markers in the texts."""
    options: dict[str, Any] = dict(model.default_params)
    for text in inputs:
        for match in _MARKER.finditer(text):
            for pair in match.group(1).split():
                key, _, value = pair.partition("=")
                options[key] = value
    return options
