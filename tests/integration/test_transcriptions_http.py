"""``POST /api/v1/audio/transcriptions`` through the whole app with a WAV made in the test: the fake's transcript and
its usage, timings on request, every refusal (415, 413, 422, 401) as an envelope naming the field, the body limit
raised for this route alone, the transcription metrics on ``/metrics``, and OpenAI ``whisper-1`` at the vendor
emulator through its SDK (a 429 retried by the app)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart
from quart.typing import TestClientProtocol

from entrypoints.http.app import create_app
from settings import Secret
from tests.emulator import SCENARIOS, RunningEmulator
from tests.support.app import auth_headers, make_container, make_settings
from tests.support.audio_clips import tone_wav

PATH = "/api/v1/audio/transcriptions"
CLIP = tone_wav(1.5)


def multipart(
    fields: Sequence[tuple[str, str]], files: Sequence[tuple[str, str, bytes, str]] = ()
) -> tuple[bytes, str]:
    """A multipart/form-data body (repeated names allowed) and its Content-Type; files are (field, name, bytes,
    type)."""
    boundary = f"----switchyard{uuid.uuid4().hex}"
    chunks: list[bytes] = []
    for name, value in fields:
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, data, content_type in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        chunks.append(head.encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


async def _post(
    client: TestClientProtocol,
    fields: Sequence[tuple[str, str]] = (("model", "fake/transcribe"),),
    *,
    audio: bytes = CLIP,
    filename: str = "clip.wav",
    content_type: str = "audio/wav",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    files = [("file", filename, audio, content_type)] if audio is not None else []
    body, mimetype = multipart(fields, files)
    sent = {**(auth_headers() if headers is None else headers), "Content-Type": mimetype}
    response = await client.post(PATH, data=body, headers=sent)
    return response.status_code, await response.get_json()


@pytest.fixture
async def small_limit_client(tmp_path: Path) -> AsyncIterator[TestClientProtocol]:
    """The app with ``audio.max_upload_bytes`` at 20,000 bytes (the 1.5 s clip is 48 kB)."""
    container = make_container(make_settings(tmp_path, audio={"max_upload_bytes": 20_000}))
    app = create_app(container)
    async with app.test_app():
        yield app.test_client()
    container.unwire()


async def test_a_wav_is_transcribed(client: TestClientProtocol) -> None:
    """A generated WAV: the fake's text, the decoded duration, usage in audio seconds with its cost, no timings unless
    asked, and meta naming the model that served."""
    status, body = await _post(client)
    assert status == 200, body
    data = body["data"]
    assert data["model"] == "fake/transcribe"
    assert data["text"]
    assert data["language"] == "en"
    assert data["duration_s"] == 1.5
    assert data["segments"] is None
    assert data["words"] is None
    assert data["usage"] == {"audio_seconds": 1.5, "cost_usd": pytest.approx(1.5 / 60 * 0.006)}
    assert body["meta"]["extra"]["model"] == "fake/transcribe"
    assert body["meta"]["extra"]["provider"] == "fake"


async def test_word_timestamps_and_the_alias(client: TestClientProtocol) -> None:
    """``timestamps=word`` (by the alias ``fake-stt``, with a language) answers segments and words within the audio."""
    fields = [("model", "fake-stt"), ("timestamps", "word"), ("language", "fr")]
    status, body = await _post(client, fields, content_type="application/octet-stream")
    assert status == 200, body
    data = body["data"]
    assert data["language"] == "fr"
    assert data["segments"]
    assert data["words"]
    for item in data["segments"] + data["words"]:
        assert set(item) == {"start_s", "end_s", "text"}
        assert 0.0 <= item["start_s"] <= item["end_s"] <= 1.5


@pytest.mark.parametrize(
    ("fields", "audio", "content_type", "status", "field"),
    [
        ([("model", "fake/transcribe")], CLIP, "text/plain", 415, "file"),
        ([("model", "fake/transcribe")], b"", "audio/wav", 422, "file"),
        ([("model", "fake/transcribe")], b"RIFF not really a wav" * 40, "audio/wav", 422, "file"),
        ([("model", "fake/transcribe"), ("colour", "blue")], CLIP, "audio/wav", 422, "colour"),
        ([("model", "fake/transcribe"), ("model", "fake-stt")], CLIP, "audio/wav", 422, "model"),
        ([("language", "en")], CLIP, "audio/wav", 422, "model"),
        ([("model", "fake/transcribe"), ("timestamps", "sentence")], CLIP, "audio/wav", 422, "timestamps"),
        ([("model", "fake/transcribe"), ("language", "English")], CLIP, "audio/wav", 422, "language"),
        ([("model", "fake/echo")], CLIP, "audio/wav", 422, None),
        ([("model", "fake/nope")], CLIP, "audio/wav", 404, None),
    ],
)
async def test_refusals_are_envelopes_naming_the_field(
    client: TestClientProtocol,
    fields: list[tuple[str, str]],
    audio: bytes,
    content_type: str,
    status: int,
    field: str | None,
) -> None:
    """Each refusal is its status with the error envelope; validation failures name the field."""
    got, body = await _post(client, fields, audio=audio, content_type=content_type)
    assert got == status, body
    assert body["success"] is False
    if field is not None:
        assert body["data"]["context"]["field"] == field, body


async def test_a_missing_file_is_a_422(client: TestClientProtocol) -> None:
    """A form without a file part names ``file``."""
    body, mimetype = multipart([("model", "fake/transcribe")])
    response = await client.post(PATH, data=body, headers={**auth_headers(), "Content-Type": mimetype})
    assert response.status_code == 422
    assert (await response.get_json())["data"]["context"]["field"] == "file"


async def test_a_json_body_is_a_415(client: TestClientProtocol) -> None:
    """The route takes multipart only."""
    response = await client.post(PATH, json={"model": "fake/transcribe"}, headers=auth_headers())
    assert response.status_code == 415


async def test_a_token_is_required(client: TestClientProtocol) -> None:
    """Without a bearer token the route answers 401."""
    status, _body = await _post(client, headers={})
    assert status == 401


async def test_files_over_the_upload_limit_are_413(small_limit_client: TestClientProtocol) -> None:
    """Over ``audio.max_upload_bytes`` is a 413 naming ``file``: just over (the service's check) and far over (the
    body limit of the route)."""
    for audio in (CLIP, CLIP * 10):
        status, body = await _post(small_limit_client, audio=audio)
        assert status == 413, body
        assert body["data"]["context"]["field"] == "file"
        assert body["data"]["context"]["limit_bytes"] == 20_000
    status, body = await _post(small_limit_client, audio=tone_wav(0.5))  # 16 kB: under the limit
    assert status == 200, body


async def test_the_route_takes_bodies_larger_than_the_app_limit(client: TestClientProtocol) -> None:
    """A 2.1 MB WAV (over ``limits.max_body_bytes``, 1 MB) is transcribed here, while a JSON route still refuses a
    body that large."""
    long_clip = tone_wav(66.0)
    assert len(long_clip) > 2 * 1024 * 1024
    status, body = await _post(client, audio=long_clip)
    assert status == 200, body
    assert body["data"]["duration_s"] == 66.0
    big = {"model": "fake/embed", "input": "x" * (2 * 1024 * 1024)}
    response = await client.post("/api/v1/embeddings", json=big, headers=auth_headers())
    assert response.status_code == 413


async def test_transcription_metrics_reach_the_metrics_page(client: TestClientProtocol) -> None:
    """After a transcription, /metrics shows its audio seconds, processing time, real-time factor and words by
    provider and model."""
    status, body = await _post(client)
    assert status == 200, body
    page = await (await client.get("/metrics")).get_data(as_text=True)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }
    labels = (("model", "fake/transcribe"), ("provider", "fake"))
    assert samples[("transcription_audio_seconds_total", labels)] == 1.5
    assert samples[("transcription_processing_seconds_count", labels)] == 1
    assert samples[("transcription_realtime_factor_count", labels)] == 1
    assert samples[("transcription_words_total", labels)] == len(body["data"]["text"].split())


# --- a real adapter at the vendor emulator ------------------------------------------------------------------------


@pytest.fixture
async def vendor_app(emulator: RunningEmulator, tmp_path: Path) -> AsyncIterator[Quart]:
    """The real app with OpenAI pointed at the emulator and the built-in catalog's transcription models."""
    providers = {
        "openai_api_key": Secret("sk-test"),
        "openai_base_url": emulator.openai_base_url,
        "retry_base_delay_s": 0.01,
        "retry_max_delay_s": 0.05,
    }
    container = make_container(make_settings(tmp_path, providers=providers))
    app = create_app(container)
    async with app.test_app():
        yield app
    container.unwire()


async def test_whisper_through_the_app_after_a_429(vendor_app: Quart, emulator: RunningEmulator) -> None:
    """``openai/whisper-1`` answers through the SDK adapter, word timings included, after a 429 the app retried
    itself; the vendor got the file under its decoded name and type."""
    emulator.state.script("whisper-1", SCENARIOS["fault-429"], SCENARIOS["text"])
    fields = [("model", "openai/whisper-1"), ("timestamps", "word")]
    status, body = await _post(vendor_app.test_client(), fields, filename="take.bin", content_type="audio/x-wav")
    emulator.state.sequences.pop("whisper-1")
    assert status == 200, body
    data = body["data"]
    assert data["text"] == SCENARIOS["text"].text
    assert [word["text"] for word in data["words"]] == ["Hello", "world"]
    assert body["meta"]["extra"]["retries"] == 1
    sent = emulator.state.last("openai_transcriptions").body
    assert sent["file"]["filename"] == "take.wav"
    assert sent["file"]["content_type"] == "audio/wav"
