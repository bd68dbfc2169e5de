"""Domain: a model in the catalog, with what it can do and what it costs.

Loading the catalog file and resolving names belong to the registry; this module only defines the entry.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from attrs import field, frozen

__all__ = ["CAPABILITIES", "Capability", "ModelSpec"]

Capability = Literal[
    "text",
    "vision",
    "tools",
    "structured_output",
    "reasoning",
    "image",
    "video",
    "tts",
    "stt",
    "realtime",
    "embeddings",
]
CAPABILITIES: frozenset[str] = frozenset(get_args(Capability))


@frozen
class ModelSpec:
    """One catalog entry. ``id`` is unique within ``provider``; ``vendor_model`` is the name sent to the vendor
    (defaults to ``id``); ``api`` picks a vendor API where there are several (OpenAI ``chat`` or ``responses``)."""

    id: str
    provider: str
    capabilities: frozenset[str]
    vendor_model: str | None = None
    aliases: tuple[str, ...] = ()
    api: str | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    input_price_per_mtok: float | None = None
    output_price_per_mtok: float | None = None
    unsupported_params: frozenset[str] = frozenset()
    default_params: dict[str, Any] = field(factory=dict)
    fallbacks: tuple[str, ...] = ()

    @property
    def qualified_id(self) -> str:
        """``provider/id``."""
        return f"{self.provider}/{self.id}"

    @property
    def wire_name(self) -> str:
        """The model name the vendor expects."""
        return self.vendor_model or self.id
