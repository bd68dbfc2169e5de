"""Driven adapter (fake): the ``fake`` vendor's builder, every port it serves (always enabled, no client to close)."""

from __future__ import annotations

from adapters.fake.embeddings import FakeEmbeddingProvider
from adapters.fake.images import FakeImageProvider
from adapters.fake.live_transcription import FakeLiveTranscriptionProvider
from adapters.fake.realtime import FakeRealtimeProvider
from adapters.fake.speech import FakeSpeechProvider
from adapters.fake.text import FakeTextProvider
from adapters.fake.transcription import FakeTranscriptionProvider
from adapters.fake.video import FakeVideoProvider
from ports.embeddings import EMBEDDING_PORT
from ports.images import IMAGE_PORT
from ports.live_transcription import LIVE_STT_PORT
from ports.providers import VendorProviders
from ports.realtime import REALTIME_PORT
from ports.speech import TTS_PORT
from ports.text import TEXT_PORT
from ports.transcription import STT_PORT
from ports.video import VIDEO_PORT

__all__ = ["build_fake_providers"]


def build_fake_providers(name: str = "fake") -> VendorProviders:
    """The deterministic fake of every modality: the embedded default's provider and the tests'."""
    return VendorProviders(
        name,
        {
            TEXT_PORT: FakeTextProvider(name),
            EMBEDDING_PORT: FakeEmbeddingProvider(name=name),
            IMAGE_PORT: FakeImageProvider(name=name),
            STT_PORT: FakeTranscriptionProvider(name=name),
            TTS_PORT: FakeSpeechProvider(name=name),
            VIDEO_PORT: FakeVideoProvider(name=name),
            LIVE_STT_PORT: FakeLiveTranscriptionProvider(name=name),
            REALTIME_PORT: FakeRealtimeProvider(name=name),
        },
    )
