"""Driven port: a vendor that turns texts into embedding vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from domain.catalog import ModelSpec
from domain.embeddings import EmbeddingResult
from ports.providers import PortKey

__all__ = ["EMBEDDING_PORT", "EmbeddingProvider"]


class EmbeddingProvider(Protocol):
    """One vendor's embeddings: one attempt per call, at most ``max_batch`` inputs (the service splits larger
    batches and reassembles them in order); raises domain errors, never a vendor exception."""

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        ...

    @property
    def max_batch(self) -> int:
        """The most inputs the vendor takes in one call."""
        ...

    async def embed(self, inputs: Sequence[str], model: ModelSpec, *, dimensions: int | None) -> EmbeddingResult:
        """Float vectors for ``inputs`` (at most ``max_batch``), in order."""
        ...


EMBEDDING_PORT: Final = PortKey[EmbeddingProvider]("embeddings")
