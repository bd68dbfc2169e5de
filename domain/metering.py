"""Domain: usage units, the quantities a provider call is billed in, whatever the modality.

Text counts tokens; image generation counts images; text-to-speech characters; speech-to-text and realtime audio
seconds; video generation video seconds; embeddings input tokens. One attempt reports one ``Units`` value, which the
attempt runner writes to the usage ledger and prices with ``domain.pricing``.
"""

from __future__ import annotations

from attrs import frozen

__all__ = ["Units"]


@frozen
class Units:
    """What one provider call consumed. Every field defaults to zero: a modality sets the units it counts."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    images: int = 0
    characters: int = 0
    audio_seconds: float = 0.0
    video_seconds: float = 0.0

    def __add__(self, other: Units) -> Units:
        return Units(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.images + other.images,
            self.characters + other.characters,
            self.audio_seconds + other.audio_seconds,
            self.video_seconds + other.video_seconds,
        )
