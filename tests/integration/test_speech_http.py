"""POST /api/v1/audio/speech and GET /api/v1/voices through the real app and container (the fake speech vendor,
SQLite usage ledger): playable audio decoded back, errors before the first byte as envelopes, a clip cut after it
ending cleanly, usage in characters, and the first chunk going out before the clip is finished."""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

import av
import pytest
from quart import Quart
from quart.typing import TestClientProtocol

from adapters.fake import build_fake_providers
from adapters.fake.speech import CHARACTER_SECONDS, FakeSpeechProvider
from container import Container
from ports.providers import VendorProviders
from ports.speech import TTS_PORT
from settings import Settings
from tests.support.app import auth_headers, make_container

TEXT = "Hello from the speech route"


@pytest.fixture
def container(settings: Settings) -> Container:
    """The app's container with the fake vendor serving speech (as ``adapters/fake/vendor.py`` wires it)."""
    fake = build_fake_providers()
    speaking = VendorProviders("fake", {**fake.providers, TTS_PORT: FakeSpeechProvider(name="fake")}, fake.close)
    return make_container(settings, vendors={"fake": speaking})


async def speak(client: TestClientProtocol, **body: Any) -> Any:
    body.setdefault("model", "fake/speech")
    body.setdefault("input", TEXT)
    return await client.post("/api/v1/audio/speech", json=body, headers=auth_headers())


def decoded(data: bytes) -> tuple[str, float]:
    """(demuxer, seconds) of a clip, decoded to its last sample."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        samples = sum(int(frame.samples) for frame in container.decode(stream))
        return container.format.name, samples / stream.codec_context.sample_rate


def expected_seconds(text: str = TEXT) -> float:
    return len(text) * CHARACTER_SECONDS


async def test_mp3_speech_is_a_playable_clip_as_long_as_the_text(client: TestClientProtocol) -> None:
    """The body is an MP3 whose decoded duration follows the text; headers say who served and what it costs."""
    response = await speak(client, voice="nova")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert response.headers["X-Switchyard-Model"] == "fake/speech"
    assert response.headers["X-Switchyard-Provider"] == "fake"
    assert response.headers["X-Switchyard-Retries"] == "0"
    assert response.headers["X-Switchyard-Characters"] == str(len(TEXT))
    assert float(response.headers["X-Switchyard-Cost-USD"]) == pytest.approx(len(TEXT) * 15.0 / 1e6)
    demuxer, seconds = decoded(await response.get_data())
    assert demuxer == "mp3"
    assert seconds == pytest.approx(expected_seconds(), abs=0.15)


@pytest.mark.parametrize(("audio_format", "demuxer"), [("wav", "wav"), ("flac", "flac"), ("opus", "ogg")])
async def test_other_formats_decode_as_themselves(client: TestClientProtocol, audio_format: str, demuxer: str) -> None:
    """The alias and the default voice serve; each format decodes as that container with the same duration."""
    response = await speak(client, model="fake-tts", format=audio_format)
    assert response.status_code == 200
    found, seconds = decoded(await response.get_data())
    assert found == demuxer
    assert seconds == pytest.approx(expected_seconds(), abs=0.15)


async def test_pcm_at_a_stated_rate(client: TestClientProtocol) -> None:
    """Raw PCM says its rate in the Content-Type and holds exactly that many 16-bit samples per second."""
    response = await speak(client, format="pcm", sample_rate=16000)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/pcm; rate=16000; channels=1; encoding=s16le"
    data = await response.get_data()
    assert len(data) / 2 / 16000 == pytest.approx(expected_seconds(), abs=0.01)


@pytest.mark.parametrize(
    ("changes", "status", "field"),
    [
        ({"input": "   "}, 422, "input"),
        ({"input": "x" * 10_001}, 422, "input"),
        ({"format": "ogg"}, 422, "$.format"),
        ({"sample_rate": 16000}, 422, "sample_rate"),
        ({"format": "pcm", "sample_rate": 11025}, 422, "sample_rate"),
        ({"speed": 9.0}, 422, "speed"),
        ({"voice": "bogus"}, 422, "voice"),
        ({"instructions": " "}, 422, "instructions"),
        ({"volume": 11}, 422, "volume"),
        ({"model": "fake/echo"}, 422, None),
        ({"model": "fake/no-such-speech"}, 404, None),
    ],
)
async def test_bad_requests_are_envelopes_naming_the_field(
    client: TestClientProtocol, changes: dict[str, Any], status: int, field: str | None
) -> None:
    """Every problem found before the first byte is a JSON error envelope; a field problem names the field."""
    response = await speak(client, **changes)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    error = (await response.get_json())["data"]
    if field is not None:
        assert field in json.dumps(error["errors"][0]), error


async def test_a_vendor_refusal_before_audio_is_a_502_envelope(client: TestClientProtocol) -> None:
    """A vendor that refuses the call (credentials) answers the envelope, not a broken audio body."""
    response = await speak(client, input=TEXT + "[[fake fake_error=auth]]")
    assert response.status_code == 502
    assert (await response.get_json())["data"]["error"] == "provider_error"


async def test_429_then_success_is_retried_before_the_first_byte(client: TestClientProtocol) -> None:
    """A 429 before any audio is retried server-side: the client gets the clip and the retry count."""
    text = TEXT + "[[fake fake_error=rate_limited fake_retry_after=0 fake_fail_times=1 fake_key=http-429]]"
    response = await speak(client, input=text)
    assert response.status_code == 200
    assert response.headers["X-Switchyard-Retries"] == "1"
    assert decoded(await response.get_data())[1] == pytest.approx(expected_seconds(), abs=0.15)


async def test_a_failure_after_audio_started_ends_the_body_and_is_counted(client: TestClientProtocol) -> None:
    """The clip stops short with a 200 (the status went out with the first chunk) and the cut is counted."""
    text = TEXT + "[[fake fake_error=overloaded fake_fail_after=2]]"
    response = await speak(client, input=text, format="wav")
    assert response.status_code == 200
    cut = await response.get_data()
    whole = await (await speak(client, format="wav")).get_data()
    assert 0 < len(cut) < len(whole)
    page = await (await client.get("/metrics")).get_data(as_text=True)
    assert 'speech_streams_cut_total{model="fake/speech",provider="fake"} 1.0' in page


async def test_usage_is_recorded_in_characters_with_cost(client: TestClientProtocol) -> None:
    """The served attempt is billed in characters at the catalog price (seen through the usage API)."""
    response = await client.post(
        "/api/v1/audio/speech", json={"model": "fake/speech", "input": TEXT}, headers=auth_headers("dora")
    )
    assert response.status_code == 200
    await response.get_data()
    deadline = time.monotonic() + 10
    while True:
        usage = await (await client.get("/api/v1/usage?group_by=model", headers=auth_headers("dora"))).get_json()
        if usage["data"]["totals"]:
            break
        assert time.monotonic() < deadline, "the speech's usage record never reached the ledger"
        await asyncio.sleep(0.05)
    (total,) = usage["data"]["totals"]
    assert total["group"] == "fake/speech"
    assert total["requests"] == 1
    assert total["cost_usd"] == pytest.approx(len(TEXT) * 15.0 / 1e6)


async def test_the_first_chunk_goes_out_before_the_clip_is_done(app: Quart) -> None:
    """With a vendor pacing its chunks 150 ms apart, the status, headers and first bytes arrive long before the
    end: nothing buffers the clip."""
    text = "one two three four five six seven eight nine ten [[fake fake_chunk_delay_ms=150]]"
    body = json.dumps({"model": "fake/speech", "input": text}).encode()
    headers = {**auth_headers(), "Content-Type": "application/json"}
    started = time.monotonic()
    async with app.test_client().request("/api/v1/audio/speech", method="POST", headers=headers) as connection:
        await connection.send(body)
        await connection.send_complete()
        first = await connection.receive()
        first_at = time.monotonic() - started
        rest = b""
        while True:
            try:
                rest += await asyncio.wait_for(connection.receive(), timeout=5)
            except Exception:  # the connection's end (an HTTPDisconnect) or no more data
                break
    total = time.monotonic() - started
    assert getattr(connection, "status_code", None) == 200  # TestHTTPConnection sets it; its protocol omits it
    assert first
    assert first_at < 0.3
    assert total > 1.0  # 10 more chunks 150 ms apart
    assert decoded(first + rest)[1] == pytest.approx(len(text.split("[[")[0].strip()) * CHARACTER_SECONDS, abs=0.15)


async def test_voices_lists_the_models_voices(client: TestClientProtocol) -> None:
    """GET /api/v1/voices?model= answers the catalog's voices for the fake model (by alias too)."""
    response = await client.get("/api/v1/voices?model=fake-tts", headers=auth_headers())
    assert response.status_code == 200
    body = await response.get_json()
    assert body["data"]["model"] == "fake/speech"
    assert [voice["id"] for voice in body["data"]["voices"]] == ["alloy", "echo", "fable", "nova", "onyx", "shimmer"]


@pytest.mark.parametrize(("query", "status"), [("", 422), ("?model=fake/echo", 422), ("?model=fake/nope", 404)])
async def test_voices_errors(client: TestClientProtocol, query: str, status: int) -> None:
    """A missing model is a 422 naming it, a model without speech a 422, an unknown one a 404."""
    response = await client.get(f"/api/v1/voices{query}", headers=auth_headers())
    assert response.status_code == status
