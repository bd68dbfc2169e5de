"""The ImageProvider contract: one set of scenarios run against the ``fake`` provider and every adapter through its
real SDK at the vendor emulator (OpenAI GPT image and DALL-E 3, Imagen on Vertex AI, a Gemini image model), so the
images (decodable, of the asked size and count), the revised prompts and the domain errors of every fault cannot
drift apart.

The emulator picks the scenario from the ``x-emulator-scenario`` header, which each target's SDK client sends; the
fake plays the same scenario from request metadata.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from attrs import field, frozen
from google import genai
from google.genai import types as genai_types
from openai import AsyncOpenAI
from PIL import Image

from adapters.fake.images import FakeImageProvider
from adapters.gemini.images import GeminiImageProvider
from adapters.gemini.vendor import DEFAULT_API_VERSION as GEMINI_API_VERSION
from adapters.openai.images import OpenAIImageProvider
from domain.catalog import ModelSpec
from domain.errors import ContentPolicyError, ProviderError, RateLimitError, ValidationError
from domain.images import ImageRequest, ImageResult, InputImage
from ports.images import ImageProvider
from tests.emulator import SCENARIOS, RunningEmulator
from tests.emulator.render_images import draw
from tests.emulator.wire import LEAKY_KEY

pytestmark = pytest.mark.filterwarnings("ignore:The generate_images method is deprecated")

#: What the fake is told (request metadata) to play each emulator scenario.
FAKE_FAULTS: dict[str, dict[str, str]] = {
    "text": {},
    "fault-429": {"fake_error": "rate_limited", "fake_retry_after": "0"},
    "fault-500": {"fake_error": "overloaded"},
    "fault-401": {"fake_error": "auth"},
    "content-filter": {"fake_error": "content_policy"},
}


@frozen
class Target:
    """One adapter under contract, the model it is handed, and what its vendor does."""

    name: str
    model: ModelSpec
    size: str
    """A non-square size this model draws (so width and height cannot be swapped unnoticed)."""
    max_n: int = 2
    revises_prompt: bool = False
    edits: bool = False
    formats: tuple[str, ...] = ("png",)
    api: str | None = None
    """The emulator's request-log name for this target's requests (``None``: the fake, which sends none)."""
    client: Callable[[RunningEmulator, dict[str, str]], Any] | None = None
    extra: dict[str, Any] = field(factory=dict)

    def request(self, scenario: str = "text", **changes: Any) -> ImageRequest:
        changes.setdefault("metadata", dict(FAKE_FAULTS[scenario]) if self.client is None else {})
        changes.setdefault("size", self.size)
        return ImageRequest(model=self.model.qualified_id, prompt="a lighthouse at dusk", **changes)


def _openai_client(emulator: RunningEmulator, headers: dict[str, str]) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key="sk-test-key", base_url=emulator.openai_base_url, max_retries=0, default_headers=headers, timeout=10.0
    )


def _genai_client(*, vertex: bool) -> Callable[[RunningEmulator, dict[str, str]], genai.Client]:
    def build(emulator: RunningEmulator, headers: dict[str, str]) -> genai.Client:
        options = genai_types.HttpOptions(
            base_url=emulator.gemini_base_url,
            headers=headers,
            timeout=10_000,
            retry_options=genai_types.HttpRetryOptions(attempts=1),
        )
        if vertex:  # Vertex AI "express mode": an API key, no project (google-genai serves Imagen only there)
            return genai.Client(vertexai=True, api_key="test-key", http_options=options)
        options.api_version = GEMINI_API_VERSION  # Gemini API mode: the version the adapter's builder sets
        return genai.Client(api_key="test-key", http_options=options)

    return build


def _spec(provider: str, model: str, api: str | None = None) -> ModelSpec:
    return ModelSpec(id=model, provider=provider, capabilities=frozenset({"image"}), api=api)


TARGETS = [
    Target("fake", _spec("fake", "image"), "1536x1024", edits=True, formats=("png", "jpeg", "webp")),
    Target(
        "openai_gpt_image",
        _spec("openai", "gpt-image-1"),
        "1536x1024",
        edits=True,
        formats=("png", "jpeg", "webp"),
        api="openai_images",
        client=_openai_client,
    ),
    Target(
        "openai_dall_e_3",
        _spec("openai", "dall-e-3"),
        "1792x1024",
        max_n=1,
        revises_prompt=True,
        api="openai_images",
        client=_openai_client,
    ),
    Target(
        "gemini_imagen",
        _spec("gemini", "imagen-4.0-generate-001", api="imagen"),
        "1408x768",
        revises_prompt=True,
        formats=("png", "jpeg"),
        api="imagen",
        client=_genai_client(vertex=True),
    ),
    Target(
        "gemini_image",
        _spec("gemini", "gemini-2.5-flash-image"),
        "1344x768",
        edits=True,
        api="gemini",
        client=_genai_client(vertex=False),
    ),
]


@pytest.fixture(params=TARGETS, ids=lambda t: t.name)
def target(request: pytest.FixtureRequest) -> Target:
    """Each adapter under contract."""
    chosen: Target = request.param
    return chosen


class Providers:
    """Builds the target's provider for a scenario (a client per scenario: the header chooses it) and closes them."""

    def __init__(self, target: Target, emulator: RunningEmulator) -> None:
        self._target = target
        self._emulator = emulator
        self._clients: list[Any] = []

    def __call__(self, scenario: str = "text") -> ImageProvider:
        target = self._target
        if target.client is None:
            return FakeImageProvider(name="fake")
        client = target.client(self._emulator, {"x-emulator-scenario": scenario})
        self._clients.append(client)
        if isinstance(client, AsyncOpenAI):
            return OpenAIImageProvider(client, name=target.model.provider)
        return GeminiImageProvider(client, name=target.model.provider)

    async def close(self) -> None:
        for client in self._clients:
            if isinstance(client, AsyncOpenAI):
                await client.close()
            else:
                await client.aio.aclose()


@pytest.fixture
async def providers(target: Target, emulator: RunningEmulator) -> AsyncIterator[Providers]:
    """A provider factory for ``target``; every client it made is closed after the test."""
    made = Providers(target, emulator)
    yield made
    await made.close()


def _decoded(result: ImageResult, index: int = 0) -> Image.Image:
    picture = Image.open(io.BytesIO(result.images[index].data))
    picture.load()
    return picture


# --- success ----------------------------------------------------------------------------------------------------


async def test_images_decode_with_the_asked_size(target: Target, providers: Providers) -> None:
    """Each image is a real PNG of exactly the asked size, and the reported width/height say the same."""
    result = await providers().generate(target.request(), target.model)
    width, height = (int(v) for v in target.size.split("x"))
    assert len(result.images) == 1
    picture = _decoded(result)
    assert picture.format == "PNG"
    assert picture.size == (width, height)
    image = result.images[0]
    assert (image.width, image.height) == (width, height)
    assert image.mime_type == "image/png"
    assert result.units.images == 1


async def test_n_images_are_returned(target: Target, providers: Providers) -> None:
    """``n`` images come back (up to what the model draws per request), each decodable, counted in the units."""
    n = target.max_n
    result = await providers().generate(target.request(n=n), target.model)
    assert len(result.images) == n
    assert result.units.images == n
    for index in range(n):
        assert _decoded(result, index).size == (result.images[index].width, result.images[index].height)


async def test_revised_prompt_only_where_the_vendor_rewrites(target: Target, providers: Providers) -> None:
    """DALL-E 3 and Imagen say what they actually drew; the others leave ``revised_prompt`` empty."""
    result = await providers().generate(target.request(), target.model)
    revised = result.images[0].revised_prompt
    if target.revises_prompt:
        assert revised
        assert "lighthouse" in revised
    else:
        assert revised is None


async def test_every_output_format_the_model_offers(target: Target, providers: Providers) -> None:
    """Each output format the model supports decodes as that format with the matching MIME type."""
    provider = providers()
    for output_format in target.formats:
        result = await provider.generate(target.request(output_format=output_format), target.model)
        assert _decoded(result).format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[output_format]
        assert result.images[0].mime_type == f"image/{output_format}"


async def test_the_same_request_draws_the_same_pixels_and_another_prompt_others(
    target: Target, providers: Providers
) -> None:
    """Images depend on the prompt (fake and emulator alike), so a mix-up of prompts or images would show."""
    provider = providers()
    first = await provider.generate(target.request(), target.model)
    again = await provider.generate(target.request(), target.model)
    other = await provider.generate(
        ImageRequest(
            model=target.model.qualified_id, prompt="a cat", size=target.size, metadata=target.request().metadata
        ),
        target.model,
    )
    assert _decoded(first).tobytes() == _decoded(again).tobytes()
    assert _decoded(first).tobytes() != _decoded(other).tobytes()


# --- faults -----------------------------------------------------------------------------------------------------


async def test_429_is_a_rate_limit_with_retry_after(target: Target, providers: Providers) -> None:
    """A vendor 429 is a ``RateLimitError`` carrying the vendor's retry delay."""
    with pytest.raises(RateLimitError) as caught:
        await providers("fault-429").generate(target.request("fault-429"), target.model)
    assert caught.value.retryable
    assert caught.value.retry_after == 0.0


async def test_429_then_success(target: Target, providers: Providers, emulator: RunningEmulator) -> None:
    """A vendor that says 429 once answers the next attempt: each call is one attempt, nothing sticks."""
    scenario = f"img-429-then-ok-{target.name}"
    emulator.state.script(scenario, SCENARIOS["fault-429"], SCENARIOS["text"])
    if target.client is None:
        provider = providers()
        request = target.request("fault-429", metadata={**FAKE_FAULTS["fault-429"], "fake_fail_times": "1"})
    else:
        provider = providers(scenario)
        request = target.request()
    with pytest.raises(RateLimitError):
        await provider.generate(request, target.model)
    result = await provider.generate(request, target.model)
    assert len(result.images) == 1


async def test_500_is_a_retryable_provider_error(target: Target, providers: Providers) -> None:
    """A vendor 5xx is a retryable ``ProviderError`` (the attempt runner retries it, then falls back)."""
    with pytest.raises(ProviderError) as caught:
        await providers("fault-500").generate(target.request("fault-500"), target.model)
    assert caught.value.retryable


async def test_policy_refusal_is_a_content_policy_error_with_the_vendors_reason(
    target: Target, providers: Providers
) -> None:
    """A refusal under the vendor's content policy is a ``ContentPolicyError`` (422) on the prompt, with a reason."""
    with pytest.raises(ContentPolicyError) as caught:
        await providers("content-filter").generate(target.request("content-filter"), target.model)
    error = caught.value
    assert isinstance(error, ValidationError)
    assert error.field == "prompt"
    assert error.provider == target.model.provider
    assert error.reason
    assert not error.retryable


async def test_refused_credentials_are_final_and_never_quote_the_key(target: Target, providers: Providers) -> None:
    """A 401 is a non-retryable ``ProviderError`` whose message does not repeat the body (which quotes the key)."""
    with pytest.raises(ProviderError) as caught:
        await providers("fault-401").generate(target.request("fault-401"), target.model)
    assert not caught.value.retryable
    assert LEAKY_KEY not in str(caught.value) + repr(caught.value.context)


# --- request translation (emulator targets) -----------------------------------------------------------------------


def _last_body(emulator: RunningEmulator, target: Target) -> dict[str, Any]:
    assert target.api is not None
    return emulator.state.last(target.api).body


async def test_request_translation(target: Target, providers: Providers, emulator: RunningEmulator) -> None:
    """The request reaches the vendor in its own terms: model, prompt, count, size (or aspect ratio), format."""
    if target.client is None:
        pytest.skip("the fake sends no request")
    n = target.max_n
    request = target.request(n=n, output_format="png")
    await providers().generate(request, target.model)
    body = _last_body(emulator, target)
    name = target.model.id
    if name == "gpt-image-1":
        assert body == {"model": name, "prompt": request.prompt, "n": n, "size": target.size, "output_format": "png"}
    elif name == "dall-e-3":
        assert body == {
            "model": name,
            "prompt": request.prompt,
            "n": 1,
            "size": target.size,
            "response_format": "b64_json",
        }
    elif name.startswith("imagen"):
        assert body["instances"] == [{"prompt": request.prompt}]
        assert body["parameters"] == {
            "sampleCount": n,
            "aspectRatio": "16:9",
            "sampleImageSize": "1K",
            "includeRaiReason": True,
            "outputOptions": {"mimeType": "image/png"},
        }
    else:
        assert body["contents"] == [{"role": "user", "parts": [{"text": request.prompt}]}]
        assert body["generationConfig"] == {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "16:9"}}
        assert sum(1 for r in emulator.state.requests[-n:] if r.api == "gemini" and r.model == name) == n


async def test_options_reach_the_vendor(target: Target, providers: Providers, emulator: RunningEmulator) -> None:
    """Quality, background and seed are passed in the vendor's terms where the model has them."""
    name = target.model.id
    if name == "gpt-image-1":
        request = target.request(quality="high", background="transparent", output_format="webp")
        result = await providers().generate(request, target.model)
        body = _last_body(emulator, target)
        assert (body["quality"], body["background"], body["output_format"]) == ("high", "transparent", "webp")
        assert "response_format" not in body  # GPT image models refuse it
        assert _decoded(result).mode == "RGBA"
        assert result.units.output_tokens > 0
    elif name == "dall-e-3":
        await providers().generate(target.request(quality="hd"), target.model)
        assert _last_body(emulator, target)["quality"] == "hd"
    elif name.startswith("imagen"):
        await providers().generate(target.request(seed=7, negative_prompt="fog"), target.model)
        parameters = _last_body(emulator, target)["parameters"]
        assert (parameters["seed"], parameters["addWatermark"], parameters["negativePrompt"]) == (7, False, "fog")
    elif name.startswith("gemini"):
        result = await providers().generate(target.request(seed=7), target.model)
        assert _last_body(emulator, target)["generationConfig"]["seed"] == 7
        assert result.units.input_tokens > 0
    else:
        pytest.skip("the fake sends no request")


async def test_edits_send_the_input_images(target: Target, providers: Providers, emulator: RunningEmulator) -> None:
    """With input images the call is an edit: multipart ``image[]`` for OpenAI, ``inlineData`` parts for Gemini;
    a model that cannot edit says so (a ``ValidationError`` naming ``input_images``) without calling the vendor."""
    source = draw("a source picture", 0, (64, 48))
    request = target.request(input_images=(InputImage(source, "image/png"), InputImage(source, "image/png")))
    before = len(emulator.state.requests)
    if not target.edits:
        with pytest.raises(ValidationError) as caught:
            await providers().generate(request, target.model)
        assert caught.value.field == "input_images"
        assert len(emulator.state.requests) == before
        return
    result = await providers().generate(request, target.model)
    assert len(result.images) == 1
    assert _decoded(result).size == tuple(int(v) for v in target.size.split("x"))
    if target.model.id == "gpt-image-1":
        edit = emulator.state.last("openai_image_edits")
        assert edit.body["prompt"] == request.prompt
        assert [(i["content_type"], i["size"]) for i in edit.body["image"]] == [("image/png", len(source))] * 2
        assert edit.headers["content-type"].startswith("multipart/form-data")
    elif target.model.id.startswith("gemini"):
        parts = _last_body(emulator, target)["contents"][0]["parts"]
        assert parts[0] == {"text": request.prompt}
        assert [p["inlineData"]["mime_type"] for p in parts[1:]] == ["image/png", "image/png"]  # sic: see emulator


async def test_a_size_the_model_cannot_draw_is_refused(target: Target, providers: Providers) -> None:
    """A size outside what the model draws is a 4xx ``ValidationError`` (ours or the vendor's), never a 5xx."""
    with pytest.raises(ValidationError):
        await providers().generate(target.request(size="1000x3"), target.model)


async def test_imagen_needs_a_vertex_client(emulator: RunningEmulator) -> None:
    """google-genai serves Imagen only in Vertex AI mode: with a Gemini API client the call is refused before any
    request, as a final ``ProviderError`` (so a fallback serves) that says why."""
    client = _genai_client(vertex=False)(emulator, {})
    before = len(emulator.state.requests)
    try:
        provider = GeminiImageProvider(client, name="gemini")
        model = _spec("gemini", "imagen-4.0-generate-001", api="imagen")
        with pytest.raises(ProviderError) as caught:
            await provider.generate(ImageRequest(model="gemini/imagen", prompt="a lighthouse"), model)
    finally:
        await client.aio.aclose()
    assert not caught.value.retryable
    assert "Vertex AI" in caught.value.message
    assert len(emulator.state.requests) == before


async def test_imagen_uses_its_own_vertex_client_beside_a_gemini_api_client(emulator: RunningEmulator) -> None:
    """A vendor whose shared client speaks the Gemini API can hand Imagen a Vertex client: Imagen goes there, the
    Gemini image models keep the shared one."""
    shared = _genai_client(vertex=False)(emulator, {"x-emulator-scenario": "text"})
    vertex = _genai_client(vertex=True)(emulator, {"x-emulator-scenario": "text"})
    try:
        provider = GeminiImageProvider(shared, name="gemini", imagen_client=vertex)
        request = ImageRequest(model="gemini/imagen", prompt="a lighthouse", size="1024x1024")
        imagen = await provider.generate(request, _spec("gemini", "imagen-4.0-generate-001", api="imagen"))
        assert emulator.state.last().api == "imagen"
        flash = await provider.generate(request, _spec("gemini", "gemini-2.5-flash-image"))
        assert emulator.state.last().api == "gemini"
    finally:
        await shared.aio.aclose()
        await vertex.aio.aclose()
    assert len(imagen.images) == len(flash.images) == 1
