"""The VideoProvider contract: one set of scenarios run against the ``fake`` provider and Veo through google-genai
(Vertex AI mode) at the vendor emulator, so the long-running protocol (submit, poll from any process, download),
the MP4 (real, of the asked length and orientation) and the domain errors of every fault cannot drift apart.

The emulator picks the scenario from the ``x-emulator-scenario`` header the target's SDK client sends; the fake plays
the same scenario from request metadata.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from typing import Any, Final

import av
import httpx2
import pytest
from attrs import frozen
from google import genai
from google.genai import types as genai_types

from adapters.fake.video import FakeVideoProvider
from adapters.gemini.video import GeminiVideoProvider
from domain.catalog import ModelSpec
from domain.errors import ContentPolicyError, ProviderError, RateLimitError, ServiceError
from domain.video import FirstFrame, GeneratedVideo, VideoOperation, VideoOperationError, VideoRequest
from ports.video import VideoProvider
from tests.emulator import RunningEmulator
from tests.emulator.scenario import Fault, Scenario

#: What the fake is told (request metadata) to play each emulator scenario.
FAKE_SCENARIOS: Final[dict[str, dict[str, str]]] = {
    "text": {"fake_finish_s": "0.2"},
    "veo-429": {"fake_error": "rate_limited", "fake_retry_after": "2"},
    "fault-mid-stream": {"fake_finish_s": "0.2", "fake_operation_error": "provider_error"},
    "fault-truncated": {"fake_finish_s": "0.2", "fake_cut_times": "1"},
    "content-filter": {"fake_finish_s": "0.2", "fake_operation_error": "content_policy"},
}
PNG: Final = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@frozen
class Target:
    """One adapter under contract and the model it is handed."""

    name: str
    model: ModelSpec

    @property
    def emulated(self) -> bool:
        return self.model.provider != "fake"

    def request(self, scenario: str = "text", **changes: Any) -> VideoRequest:
        changes.setdefault("metadata", {} if self.emulated else dict(FAKE_SCENARIOS[scenario]))
        changes.setdefault("duration_s", 4)
        changes.setdefault("aspect_ratio", "16:9")
        return VideoRequest(model=self.model.qualified_id, prompt="a paper boat on a river", **changes)


def _spec(provider: str, model: str) -> ModelSpec:
    return ModelSpec(id=model, provider=provider, capabilities=frozenset({"video"}))


TARGETS: Final = [Target("fake", _spec("fake", "video")), Target("gemini_veo", _spec("gemini", "veo-3.0-generate-001"))]


@pytest.fixture(scope="module")
def emulator(emulator: RunningEmulator) -> RunningEmulator:
    """The module's vendor emulator, with a 429 that says when to retry."""
    emulator.state.add("veo-429", Scenario(fault=Fault("rate_limited", retry_after_s=2.0)))
    return emulator


@pytest.fixture(params=TARGETS, ids=lambda t: t.name)
def target(request: pytest.FixtureRequest) -> Target:
    chosen: Target = request.param
    return chosen


def genai_client(emulator: RunningEmulator, scenario: str, *, vertex: bool = True) -> genai.Client:
    """A client as the Gemini vendor builds one (httpx2, no SDK retries), in Vertex AI express mode."""
    options = genai_types.HttpOptions(
        base_url=emulator.gemini_base_url,
        headers={"x-emulator-scenario": scenario},
        timeout=10_000,
        retry_options=genai_types.HttpRetryOptions(attempts=1),
        async_client_args={"transport": httpx2.AsyncHTTPTransport()},
    )
    return genai.Client(vertexai=vertex, api_key="test-key", http_options=options)


class Providers:
    """Builds the target's provider for a scenario (a new one each call: another process, as far as the provider
    knows) and closes the clients."""

    def __init__(self, target: Target, emulator: RunningEmulator) -> None:
        self._target = target
        self._emulator = emulator
        self._clients: list[genai.Client] = []

    def __call__(self, scenario: str = "text") -> VideoProvider:
        if not self._target.emulated:
            return FakeVideoProvider(name="fake")
        client = genai_client(self._emulator, scenario)
        self._clients.append(client)
        return GeminiVideoProvider(client, name="gemini")

    async def close(self) -> None:
        for client in self._clients:
            await client.aio.aclose()


@pytest.fixture
async def providers(target: Target, emulator: RunningEmulator) -> AsyncIterator[Providers]:
    made = Providers(target, emulator)
    yield made
    await made.close()


async def until_done(provider: VideoProvider, operation: VideoOperation, model: ModelSpec) -> list[ServiceError]:
    """Poll as the worker does (a retryable failure is asked again); the retryable failures seen on the way."""
    seen: list[ServiceError] = []
    for _ in range(100):
        try:
            state = await provider.poll(operation, model)
        except ServiceError as exc:
            if not exc.retryable:
                raise
            seen.append(exc)
            continue
        if state.done:
            assert state.progress in (None, 1.0)
            return seen
        assert state.progress is None or 0.0 <= state.progress <= 1.0
        await asyncio.sleep(0.05)
    raise AssertionError("the operation never finished")


def mp4_facts(video: GeneratedVideo) -> tuple[str, float, int, int]:
    with av.open(io.BytesIO(video.data), mode="r") as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, (container.duration or 0) / 1_000_000, stream.width, stream.height


async def test_a_video_is_made_polled_and_downloaded(target: Target, providers: Providers) -> None:
    """Submit, poll to done, fetch: a real H.264 MP4 of the asked length, landscape for 16:9, described truly."""
    provider = providers()
    operation = await provider.submit(target.request(), target.model)
    assert operation.name
    await until_done(provider, operation, target.model)
    video = await provider.fetch(operation, target.model)
    codec, seconds, width, height = mp4_facts(video)
    assert (codec, video.mime_type) == ("h264", "video/mp4")
    assert abs(seconds - 4.0) < 0.2
    assert abs(video.duration_s - 4.0) < 0.2
    assert (video.width, video.height) == (width, height)
    assert width > height


async def test_another_process_polls_and_fetches_the_same_operation(target: Target, providers: Providers) -> None:
    """The operation is all a provider needs: a new provider (a restarted process) finishes and downloads it."""
    operation = await providers().submit(target.request(), target.model)
    later = providers()
    await until_done(later, operation, target.model)
    assert mp4_facts(await later.fetch(operation, target.model))[0] == "h264"


async def test_a_rate_limited_submission_says_when_to_retry(target: Target, providers: Providers) -> None:
    """A 429 is a retryable RateLimitError carrying the vendor's wait."""
    with pytest.raises(RateLimitError) as caught:
        await providers("veo-429").submit(target.request("veo-429"), target.model)
    assert caught.value.retryable
    assert caught.value.retry_after == 2.0


async def test_a_failed_operation_is_final(target: Target, providers: Providers) -> None:
    """The operation itself failed: ``VideoOperationError`` (never retried), from the poll."""
    provider = providers("fault-mid-stream")
    operation = await provider.submit(target.request("fault-mid-stream"), target.model)
    with pytest.raises(VideoOperationError) as caught:
        await until_done(provider, operation, target.model)
    assert (caught.value.code, caught.value.retryable) == ("video_generation_failed", False)


async def test_a_filtered_video_is_a_content_policy_refusal(target: Target, providers: Providers) -> None:
    """A video withheld under the vendor's policy is a ContentPolicyError with a reason."""
    provider = providers("content-filter")
    operation = await provider.submit(target.request("content-filter"), target.model)
    with pytest.raises(ContentPolicyError) as caught:
        await until_done(provider, operation, target.model)
    assert caught.value.reason


async def test_a_download_cut_short_is_retryable_and_asked_again(target: Target, providers: Providers) -> None:
    """The first answer carrying the video breaks off: a retryable ProviderError; asking again gets the video."""
    provider = providers("fault-truncated")
    operation = await provider.submit(target.request("fault-truncated"), target.model)
    failures = await until_done(provider, operation, target.model)
    try:
        video = await provider.fetch(operation, target.model)
    except ProviderError as exc:
        failures.append(exc)
        video = await provider.fetch(operation, target.model)
    assert len(failures) == 1
    assert isinstance(failures[0], ProviderError)
    assert failures[0].retryable
    assert mp4_facts(video)[0] == "h264"


# --- Veo's wire -------------------------------------------------------------------------------------------------


async def test_veo_is_sent_every_choice_and_the_first_frame(emulator: RunningEmulator) -> None:
    """duration, ratio, resolution, seed, negative prompt and audio reach ``parameters``; the first frame is the
    instance's base64 image."""
    client = genai_client(emulator, "text")
    try:
        provider = GeminiVideoProvider(client, name="gemini")
        request = VideoRequest(
            model="gemini/veo-3.0-generate-001",
            prompt="a paper boat",
            first_frame=FirstFrame(PNG, "image/png"),
            negative_prompt="rain",
            duration_s=6,
            aspect_ratio="9:16",
            resolution="1080p",
            seed=7,
            audio=False,
        )
        await provider.submit(request, TARGETS[1].model)
        sent = emulator.state.last("veo_submit")
        [instance] = sent.body["instances"]
        assert instance["prompt"] == "a paper boat"
        assert instance["image"] == {"bytesBase64Encoded": base64.b64encode(PNG).decode(), "mimeType": "image/png"}
        assert sent.body["parameters"] == {
            "sampleCount": 1,
            "durationSeconds": 6,
            "aspectRatio": "9:16",
            "resolution": "1080p",
            "seed": 7,
            "negativePrompt": "rain",
            "generateAudio": False,
        }
        assert sent.model == "veo-3.0-generate-001"
    finally:
        await client.aio.aclose()


async def test_veo_without_a_vertex_client_is_refused_before_any_request(emulator: RunningEmulator) -> None:
    """google-genai makes videos in Vertex AI mode only: a Gemini API client is a final ProviderError, sent nowhere."""
    client = genai_client(emulator, "text", vertex=False)
    before = len(emulator.state.requests)
    try:
        with pytest.raises(ProviderError) as caught:
            await GeminiVideoProvider(client, name="gemini").submit(TARGETS[1].request(), TARGETS[1].model)
        assert not caught.value.retryable
        assert len(emulator.state.requests) == before
    finally:
        await client.aio.aclose()


async def test_the_emulator_refuses_what_veo_refuses(emulator: RunningEmulator) -> None:
    """A duration Veo does not film is Google's 400, which the adapter reports as a ValidationError."""
    client = genai_client(emulator, "text")
    try:
        with pytest.raises(ServiceError) as caught:
            await GeminiVideoProvider(client, name="gemini").submit(TARGETS[1].request(duration_s=5), TARGETS[1].model)
        assert caught.value.code == "validation_error"
    finally:
        await client.aio.aclose()
