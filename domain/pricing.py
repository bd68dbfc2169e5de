"""Domain: what a provider call costs, from its usage units and the catalog entry's prices (USD).

Each unit has its own price field on ``ModelSpec``; a call is priced when its entry prices at least one of the
units it consumed, else its cost is unknown (``None``) rather than zero, so "free" and "unpriced" stay apart.
"""

from __future__ import annotations

from domain.catalog import ModelSpec
from domain.metering import Units

__all__ = ["cost_usd", "image_unit_price"]


def image_unit_price(spec: ModelSpec, size: str | None, quality: str | None) -> float | None:
    """Price of one image: the ``"<size>/<quality>"`` variant, then ``quality``, then ``size``, else ``image_price``."""
    for key in (f"{size}/{quality}", quality, size):
        if key is not None and key in spec.image_prices:
            return spec.image_prices[key]
    return spec.image_price


def cost_usd(units: Units, spec: ModelSpec, *, image_price: float | None = None) -> float | None:
    """Cost of ``units`` at ``spec``'s prices, rounded to 1e-8 USD; ``None`` when nothing consumed is priced.

    ``image_price`` overrides the entry's default per-image price (the variant the request asked for)."""
    per_image = image_price if image_price is not None else spec.image_price
    terms = (
        (units.input_tokens, spec.input_price_per_mtok, 1e-6),
        (units.output_tokens, spec.output_price_per_mtok, 1e-6),
        (units.images, per_image, 1.0),
        (units.characters, spec.character_price_per_m, 1e-6),
        (units.audio_seconds, spec.audio_price_per_minute, 1 / 60),
        (units.video_seconds, spec.video_price_per_second, 1.0),
    )
    priced = [(amount, price, scale) for amount, price, scale in terms if price is not None]
    if not priced:
        return None
    return round(sum(amount * price * scale for amount, price, scale in priced), 8)
