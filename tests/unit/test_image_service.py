"""ImageService: the request's rules against the model's entry, retries and fallbacks through the attempt runner,
images stored for their caller, per-image prices by size and quality, and one usage record per attempt."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from PIL import Image

from adapters.fake.images import FakeImageProvider
from domain.catalog import ModelSpec
from domain.errors import (
    CapabilityError,
    ContentPolicyError,
    NotFoundError,
    ProviderError,
    RateLimitError,
    ValidationError,
)
from domain.images import ImageRequest
from domain.media import MediaId, media_path
from domain.types import CustomerId
from ports.images import IMAGE_PORT, ImageProvider
from services.attempts import AttemptRunner, Caller, RetryPolicy
from services.images import MAX_IMAGES, Generated, ImageService
from services.registry import ProviderRegistry
from tests.fakes.images import InMemoryMediaStore, ScriptedImageProvider, images
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.providers import vendors_with
from tests.fakes.usage import InMemoryUsageLedger

CALLER = Caller(CustomerId("alice"), "req-1")


def image_spec(model_id: str, provider: str = "alpha", **kwargs: Any) -> ModelSpec:
    kwargs.setdefault("image_sizes", ("256x256", "512x512", "1024x1024"))
    kwargs.setdefault("image_qualities", ("low", "high"))
    kwargs.setdefault("max_images", 4)
    kwargs.setdefault("image_price", 0.04)
    return ModelSpec(id=model_id, provider=provider, capabilities=frozenset({"image"}), **kwargs)


class Harness:
    def __init__(self, providers: Mapping[str, ImageProvider], catalog: Sequence[ModelSpec]) -> None:
        self.usage = InMemoryUsageLedger()
        self.metrics = RecordingMetrics()
        self.media = InMemoryMediaStore()
        self.sleeps: list[float] = []
        registry = ProviderRegistry(catalog, vendors_with(IMAGE_PORT, providers))
        runner = AttemptRunner(registry, self.usage, self.metrics, RetryPolicy(max_retries=2), sleep=self._sleep)
        self.service = ImageService(runner, self.media)

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def generate(self, model: str = "alpha/draw", prompt: str = "a lighthouse", **kwargs: Any) -> Generated:
        return await self.service.generate(ImageRequest(model=model, prompt=prompt, **kwargs), CALLER)


def fake_harness(**spec: Any) -> Harness:
    return Harness({"alpha": FakeImageProvider(name="alpha")}, [image_spec("draw", **spec)])


# --- success ----------------------------------------------------------------------------------------------------


async def test_images_are_stored_for_the_caller_and_described() -> None:
    """Each image is put in the media store (kind image, owned by the caller) and answered with its URL and size."""
    harness = fake_harness()
    result = await harness.generate(n=2, size="512x512")
    generation = result.generation
    assert generation.model == "alpha/draw"
    assert len(generation.images) == 2
    for item, drawn in zip(generation.images, result.images, strict=True):
        stored, data = harness.media.objects[MediaId(item.media_id)]
        assert (stored.owner, stored.kind, stored.content_type) == ("alice", "image", "image/png")
        assert data == drawn.data
        assert item.url == media_path(stored.id)
        assert (item.width, item.height, item.mime_type) == (512, 512, "image/png")
        assert item.b64_json is None
        assert Image.open(io.BytesIO(data)).size == (512, 512)


async def test_b64_json_only_when_asked_for() -> None:
    """``include_b64`` adds the stored bytes inline, base64."""
    harness = fake_harness()
    item = (await harness.generate(include_b64=True)).generation.images[0]
    assert item.b64_json is not None
    assert base64.b64decode(item.b64_json) == harness.media.objects[item.media_id][1]  # type: ignore[index]


async def test_usage_counts_images_and_prices_them_by_variant() -> None:
    """Usage is images and cost (the size/quality variant's price per image); one usage record with capability
    ``image`` holds the same."""
    harness = fake_harness(image_prices={"512x512/high": 0.1, "low": 0.01})
    result = await harness.generate(n=3, size="512x512", quality="high")
    assert result.generation.usage.images == 3
    assert result.generation.usage.cost_usd == pytest.approx(0.3)
    cheap = await harness.generate(n=2, quality="low")
    assert cheap.generation.usage.cost_usd == pytest.approx(0.02)
    default = await harness.generate()
    assert default.generation.usage.cost_usd == pytest.approx(0.04)
    record = harness.usage.records[0]
    assert (record.capability, record.images, record.outcome) == ("image", 3, "done")
    assert record.cost_usd == pytest.approx(0.3)
    assert result.meta["model"] == "alpha/draw"
    assert result.meta["fallback_used"] is None


# --- the request's rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "allowed"),
    [
        ({"n": 0}, "n", "1 to 4"),
        ({"n": 5}, "n", "1 to 4"),
        ({"size": "2048x2048"}, "size", "256x256, 512x512, 1024x1024"),
        ({"quality": "ultra"}, "quality", "low, high"),
        ({"prompt": "   "}, "prompt", "empty"),
        ({"model": ""}, "model", "empty"),
    ],
)
async def test_invalid_requests_name_the_field_and_what_is_allowed(
    changes: dict[str, Any], field: str, allowed: str
) -> None:
    """A bad ``n``, size, quality or an empty prompt is a ValidationError naming the field (and the allowed values)
    before any provider call."""
    provider = ScriptedImageProvider(name="alpha")
    harness = Harness({"alpha": provider}, [image_spec("draw")])
    arguments = {"model": "alpha/draw", "prompt": "a lighthouse", **changes}
    with pytest.raises(ValidationError) as caught:
        await harness.service.generate(ImageRequest(**arguments), CALLER)
    assert caught.value.field == field
    assert allowed in caught.value.message
    assert provider.calls == 0
    assert harness.usage.records == []


async def test_a_model_without_max_images_takes_up_to_the_global_ceiling() -> None:
    """An entry without ``max_images`` allows 1 to ``MAX_IMAGES``."""
    harness = Harness({"alpha": ScriptedImageProvider(name="alpha")}, [image_spec("draw", max_images=None)])
    assert len((await harness.generate(n=MAX_IMAGES)).generation.images) == MAX_IMAGES
    with pytest.raises(ValidationError):
        await harness.generate(n=MAX_IMAGES + 1)


async def test_a_model_without_the_image_capability_is_a_capability_error() -> None:
    """A text model is a 422 ``CapabilityError`` naming the model; an unknown one is a 404."""
    text = ModelSpec(id="chat", provider="alpha", capabilities=frozenset({"text"}))
    harness = Harness({"alpha": ScriptedImageProvider(name="alpha")}, [image_spec("draw"), text])
    with pytest.raises(CapabilityError) as caught:
        await harness.generate(model="alpha/chat")
    assert caught.value.model == "alpha/chat"
    with pytest.raises(NotFoundError):
        await harness.generate(model="alpha/nope")


async def test_an_entry_without_sizes_leaves_the_size_to_the_vendor() -> None:
    """Empty ``image_sizes`` means the vendor decides: the size is passed through unchecked."""
    provider = ScriptedImageProvider(name="alpha")
    harness = Harness({"alpha": provider}, [image_spec("draw", image_sizes=())])
    await harness.generate(size="640x480")
    assert provider.requests[0].size == "640x480"


# --- retries, fallbacks, refusals -------------------------------------------------------------------------------


async def test_429_then_success_waits_retry_after_and_records_both_attempts() -> None:
    """A vendor 429 with Retry-After is retried after that delay; both attempts leave a usage record."""
    provider = ScriptedImageProvider(RateLimitError("slow down", retry_after=1.5), images(2), name="alpha")
    harness = Harness({"alpha": provider}, [image_spec("draw")])
    result = await harness.generate(n=2)
    assert len(result.generation.images) == 2
    assert harness.sleeps == [1.5]
    assert result.meta["retries"] == 1
    assert [(r.outcome, r.images) for r in harness.usage.records] == [("rate_limited", 0), ("done", 2)]


async def test_falls_back_to_the_next_model_with_the_same_request() -> None:
    """When the primary keeps failing, the fallback draws the same request; meta names it."""
    down = ScriptedImageProvider(ProviderError("alpha", "down", retryable=True), name="alpha")
    backup = ScriptedImageProvider(images(1, revised="a lighthouse, at dusk"), name="beta")
    catalog = [image_spec("draw", fallbacks=("beta/paint",)), image_spec("paint", provider="beta", image_price=0.1)]
    harness = Harness({"alpha": down, "beta": backup}, catalog)
    result = await harness.generate(size="512x512")
    assert down.calls == 3  # the first attempt and two retries
    assert backup.requests[0].prompt == "a lighthouse"
    assert backup.requests[0].size == "512x512"
    assert result.meta["fallback_used"] == "beta/paint"
    assert result.generation.model == "beta/paint"
    assert result.generation.images[0].revised_prompt == "a lighthouse, at dusk"
    assert result.generation.usage.cost_usd == pytest.approx(0.1)  # the serving model's price


async def test_a_fallback_that_cannot_take_the_request_is_skipped() -> None:
    """A fallback drawing fewer images (or other sizes) than asked is not tried: the primary's error stands."""
    down = ScriptedImageProvider(ProviderError("alpha", "down", retryable=False), name="alpha")
    small = ScriptedImageProvider(name="beta")
    catalog = [image_spec("draw", fallbacks=("beta/one",)), image_spec("one", provider="beta", max_images=1)]
    harness = Harness({"alpha": down, "beta": small}, catalog)
    with pytest.raises(ProviderError):
        await harness.generate(n=3)
    assert small.calls == 0


async def test_a_content_policy_refusal_is_not_retried() -> None:
    """A policy refusal reaches the caller as ``ContentPolicyError`` (422) after one attempt."""
    refusal = ContentPolicyError("alpha", "the prompt was refused")
    provider = ScriptedImageProvider(refusal, name="alpha")
    harness = Harness({"alpha": provider}, [image_spec("draw")])
    with pytest.raises(ContentPolicyError) as caught:
        await harness.generate()
    assert caught.value.reason == "the prompt was refused"
    assert provider.calls == 1
    assert harness.sleeps == []
    assert harness.media.objects == {}


async def test_the_fake_provider_scripts_429_then_success_through_metadata() -> None:
    """The fake's ``fake_fail_times`` plays "429, then success" through the real runner (the demo and e2e path)."""
    harness = fake_harness()
    metadata = {"fake_error": "rate_limited", "fake_retry_after": "0.25", "fake_fail_times": "1"}
    result = await harness.generate(metadata=metadata)
    assert harness.sleeps == [0.25]
    assert len(result.generation.images) == 1
