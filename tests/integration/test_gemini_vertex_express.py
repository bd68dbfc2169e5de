"""Imagen and Veo through the Gemini vendor as the container builds it from settings, with a Vertex AI express-mode key
(``providers.gemini_vertex_api_key``) at the vendor emulator: Imagen draws and Veo makes, polls and downloads a video
on the Vertex client, while text stays on the Gemini API client.

Project mode (``providers.gemini_vertex_project``/``_location``) is proven at the builder only
(tests/unit/test_gemini_vertex.py): its requests go under ``projects/{project}/locations/{location}/`` with an OAuth
token from Application Default Credentials, and the emulator serves neither that path nor a token endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from container import _vendor_table
from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Message
from domain.images import ImageRequest
from domain.video import VideoRequest
from ports.images import IMAGE_PORT
from ports.providers import VendorProviders
from ports.text import TEXT_PORT
from ports.video import VIDEO_PORT
from settings import Secret, load_settings
from tests.emulator import SCENARIOS, RunningEmulator

IMAGEN = ModelSpec(id="imagen-4.0-generate-001", provider="gemini", capabilities=frozenset({"image"}), api="imagen")
VEO = ModelSpec(id="veo-3.0-generate-001", provider="gemini", capabilities=frozenset({"video"}))
TEXT = ModelSpec(id="text", provider="gemini", capabilities=frozenset({"text"}))


@pytest.fixture
def scripted(emulator: RunningEmulator) -> Iterator[None]:
    """The emulator answers Imagen and Veo by model name (the builder's clients send no scenario header)."""
    for spec in (IMAGEN, VEO):
        emulator.state.script(spec.wire_name, SCENARIOS["text"])
    yield
    for spec in (IMAGEN, VEO):
        emulator.state.sequences.pop(spec.wire_name, None)


@pytest.fixture
async def vendor(emulator: RunningEmulator, scripted: None) -> AsyncIterator[VendorProviders]:
    """The Gemini vendor from settings: a Gemini API key, and a Vertex express-mode key, both at the emulator."""
    environ = {
        "GEMINI_API_KEY": "AIza-test",
        "GOOGLE_GEMINI_BASE_URL": emulator.gemini_base_url,
        "SWITCHYARD_PROVIDERS_GEMINI_VERTEX_API_KEY": "vertex-express-key",
        "SWITCHYARD_PROVIDERS_GEMINI_VERTEX_BASE_URL": emulator.gemini_base_url,
    }
    [(name, build, key, base_url)] = [
        row for row in _vendor_table(load_settings(environ).providers) if row[0] == "gemini"
    ]
    assert isinstance(key, Secret)
    built: VendorProviders = build(
        name=name, api_key=key.reveal(), base_url=base_url, timeout_s=10.0, connect_timeout_s=2.0
    )
    yield built
    await built.close()


async def test_imagen_draws_on_the_vertex_client(vendor: VendorProviders, emulator: RunningEmulator) -> None:
    """Imagen's ``:predict`` goes out on the Vertex path (``/v1beta1/publishers/...``) with the express-mode key."""
    images = vendor.get(IMAGE_PORT)
    assert images is not None
    result = await images.generate(ImageRequest(model="gemini/imagen", prompt="a lighthouse", size="1024x1024"), IMAGEN)
    assert len(result.images) == 1
    assert result.images[0].data
    assert emulator.state.last().api == "imagen"


async def test_veo_makes_polls_and_downloads_a_video_on_the_vertex_client(vendor: VendorProviders) -> None:
    """Veo's ``:predictLongRunning`` and ``:fetchPredictOperation`` through the express-mode client: a real MP4."""
    video = vendor.get(VIDEO_PORT)
    assert video is not None
    request = VideoRequest(
        model="gemini/veo-3.0-generate-001", prompt="a paper boat", duration_s=4, aspect_ratio="16:9"
    )
    operation = await video.submit(request, VEO)
    for _ in range(100):
        if (await video.poll(operation, VEO)).done:
            break
        await asyncio.sleep(0.05)
    made = await video.fetch(operation, VEO)
    assert made.mime_type == "video/mp4"
    assert made.data[4:8] == b"ftyp"
    assert made.duration_s == pytest.approx(4.0, abs=0.2)


async def test_text_stays_on_the_gemini_api_client(vendor: VendorProviders, emulator: RunningEmulator) -> None:
    """Chat goes to the Gemini API (``/v1beta/models/...``), never to Vertex."""
    text = vendor.get(TEXT_PORT)
    assert text is not None
    request = ChatRequest(model="gemini/text", messages=[Message("user", "hi")])
    emulator.state.script(TEXT.wire_name, SCENARIOS["text"])
    try:
        answer = "".join([getattr(event, "text", "") async for event in text.stream(request, TEXT)])
    finally:
        emulator.state.sequences.pop(TEXT.wire_name, None)
    assert answer
    last = emulator.state.last()
    assert (last.api, last.path) == ("gemini", "/v1beta/models/text:streamGenerateContent")
