"""Driven adapters: the deterministic ``fake`` vendor of every modality (the embedded default's and the tests')."""

from adapters.fake.text import FakeTextProvider
from adapters.fake.vendor import build_fake_providers

__all__ = ["FakeTextProvider", "build_fake_providers"]
