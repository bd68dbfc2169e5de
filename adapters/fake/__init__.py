"""Driven adapter: the deterministic ``fake`` vendor (the embedded default's provider and the tests')."""

from adapters.fake.text import FakeTextProvider

__all__ = ["FakeTextProvider"]
