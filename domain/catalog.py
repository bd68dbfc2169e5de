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
    # Prices of the non-token units (USD); the token prices above also price embedding input tokens.
    image_price: float | None = None
    """Per image, when no ``image_prices`` variant applies."""
    image_prices: dict[str, float] = field(factory=dict)
    """Per image by variant: ``"<size>/<quality>"``, then ``"<quality>"``, then ``"<size>"`` (first match wins)."""
    character_price_per_m: float | None = None
    """Per million characters (text-to-speech)."""
    audio_price_per_minute: float | None = None
    """Per minute of audio (speech-to-text, realtime)."""
    video_price_per_second: float | None = None
    """Per second of generated video."""
    # What a modality may ask of this model (empty: the vendor decides).
    image_sizes: tuple[str, ...] = ()
    image_qualities: tuple[str, ...] = ()
    max_images: int | None = None
    """Most images per request (``n``)."""
    embedding_dimensions: int | None = None
    """Length of the model's vectors; with ``adjustable_dimensions``, the most a request may ask for."""
    adjustable_dimensions: bool = False
    # Text-to-speech: the voices a request may name (empty: the vendor's API lists them) and the longest input.
    voices: tuple[str, ...] = ()
    max_input_characters: int | None = None

    @property
    def qualified_id(self) -> str:
        """``provider/id``."""
        return f"{self.provider}/{self.id}"

    @property
    def wire_name(self) -> str:
        """The model name the vendor expects."""
        return self.vendor_model or self.id
