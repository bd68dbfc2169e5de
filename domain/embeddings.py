"""Domain: embedding requests, one provider call's vectors, and the answer (the seed's "semantic" provider).

A request's inputs are embedded by one model: a batch larger than the vendor takes is split into calls and the
vectors reassembled in input order, never mixed with another model's (vectors of different models live in
different spaces, so a fallback re-embeds the whole request).
"""

from __future__ import annotations

from attrs import frozen

from domain.metering import Units

__all__ = ["EmbeddingRequest", "EmbeddingResponse", "EmbeddingResult", "EmbeddingUsage"]


@frozen
class EmbeddingRequest:
    """``POST /api/v1/embeddings``: one text or a list of texts; ``dimensions`` where the model can shorten its
    vectors (the model's full length when ``None``)."""

    model: str
    input: str | list[str]
    dimensions: int | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        """The texts in order (a single string is a batch of one)."""
        return (self.input,) if isinstance(self.input, str) else tuple(self.input)


@frozen
class EmbeddingResult:
    """One provider call's vectors, one per input in input order, and the units it consumed (input tokens)."""

    vectors: tuple[tuple[float, ...], ...]
    units: Units
    estimated: bool = False
    """The vendor reported no usage: ``units`` are an estimate (billed and recorded as such)."""

    def __add__(self, other: EmbeddingResult) -> EmbeddingResult:
        """The vectors of two consecutive calls, in order, and their units summed."""
        return EmbeddingResult(
            self.vectors + other.vectors, self.units + other.units, self.estimated or other.estimated
        )


@frozen
class EmbeddingUsage:
    """What a request consumed: input tokens, and their price when the catalog prices the model."""

    input_tokens: int
    cost_usd: float | None


@frozen
class EmbeddingResponse:
    """The answer: the serving model (``provider/id``), one vector per input in input order, their length."""

    model: str
    embeddings: list[list[float]]
    dimensions: int
    usage: EmbeddingUsage
