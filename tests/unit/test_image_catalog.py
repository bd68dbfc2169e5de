"""The built-in catalog's image entries: what they allow is what their adapters can draw, and every price variant
names a size and quality the entry allows (a typo in a variant would silently fall back to the default price)."""

from __future__ import annotations

import pytest

from adapters.gemini.images import GEMINI_IMAGE_SIZES, IMAGEN_SIZES
from domain.catalog import ModelSpec
from domain.images import parse_size
from domain.pricing import image_unit_price
from settings.catalog import load_catalog

IMAGE_ENTRIES = [spec for spec in load_catalog() if "image" in spec.capabilities]


def test_the_promised_image_models_are_catalogued() -> None:
    """The fake, OpenAI's GPT image and DALL-E 3, Imagen and a Gemini image model are there."""
    ids = {spec.qualified_id for spec in IMAGE_ENTRIES}
    assert {
        "fake/image",
        "openai/gpt-image-1",
        "openai/gpt-image-1-mini",
        "openai/dall-e-3",
        "gemini/imagen-4.0-generate-001",
        "gemini/gemini-2.5-flash-image",
    } <= ids


@pytest.mark.parametrize("spec", IMAGE_ENTRIES, ids=lambda s: s.qualified_id)
def test_image_entries_say_what_they_take_and_cost(spec: ModelSpec) -> None:
    """Sizes are ``WxH`` (or ``auto``), ``max_images`` is set, and one image has a price."""
    assert spec.image_sizes
    assert all(size == "auto" or parse_size(size) is not None for size in spec.image_sizes)
    assert spec.max_images is not None
    assert spec.max_images >= 1
    assert spec.image_price is not None
    for variant in spec.image_prices:
        size, _, quality = variant.rpartition("/")
        if size:
            assert size in spec.image_sizes, variant
            assert quality in spec.image_qualities, variant
        else:
            assert quality in spec.image_sizes or quality in spec.image_qualities, variant


@pytest.mark.parametrize("spec", [s for s in IMAGE_ENTRIES if s.provider == "gemini"], ids=lambda s: s.qualified_id)
def test_gemini_sizes_are_those_the_adapter_can_translate(spec: ModelSpec) -> None:
    """Each size a Gemini entry allows has an aspect ratio in its adapter's table (else every such request fails)."""
    table = IMAGEN_SIZES if spec.api == "imagen" else GEMINI_IMAGE_SIZES
    assert set(spec.image_sizes) <= set(table)


def test_gpt_image_prices_follow_size_and_quality() -> None:
    """A large high-quality GPT image costs more than a square low-quality one; no quality is the default price."""
    spec = next(s for s in IMAGE_ENTRIES if s.qualified_id == "openai/gpt-image-1")
    assert image_unit_price(spec, "1536x1024", "high") == 0.25
    assert image_unit_price(spec, "1024x1024", "low") == 0.011
    assert image_unit_price(spec, None, None) == spec.image_price
