"""WS /api/v1/ws/transcribe: a streamed clip gets partial and final transcripts, then exactly one terminal message and
the close code of the error table; refusals, a silent client and a vendor failure end the same way; audio frames never
reach the logs; the live transcription metrics reach ``/metrics``."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from quart.testing.connections import WebsocketDisconnectError
from quart.typing import TestClientProtocol, TestWebsocketConnectionProtocol

from adapters.fake.live_transcription import FakeLiveTranscriptionProvider
from adapters.fake.vendor import build_fake_providers
from entrypoints.http.app import create_app
from ports.live_transcription import LIVE_STT_PORT
from ports.providers import VendorProviders
from tests.support.app import auth_headers, make_container, make_settings
from tests.support.live_audio import frames, tone_pcm

PATH = "/api/v1/ws/transcribe"
TERMINAL = ("done", "error", "cancelled")
START = json.dumps({"type": "start", "sample_rate": 16_000, "encoding": "pcm16"})
END = json.dumps({"type": "end"})


def _vendors() -> dict[str, VendorProviders]:
    """The fake vendor with its live provider (as its builder registers it)."""
    fake = build_fake_providers()
    live = {**fake.providers, LIVE_STT_PORT: FakeLiveTranscriptionProvider(name="fake")}
    return {"fake": VendorProviders("fake", live, fake.close)}


async def _client(tmp_path: Path, idle_s: float = 0.5, **logging_settings: str) -> AsyncIterator[TestClientProtocol]:
    settings = make_settings(tmp_path, audio={"live_idle_timeout_s": idle_s}, logging=logging_settings)
    container = make_container(settings, vendors=_vendors())
    app = create_app(container)
    async with app.test_app():
        yield app.test_client()
    container.unwire()


@pytest.fixture
async def ws_client(tmp_path: Path) -> AsyncIterator[TestClientProtocol]:
    """The app with the fake's live provider and a short idle timeout."""
    async for client in _client(tmp_path):
        yield client


@pytest.fixture
async def patient_client(tmp_path: Path) -> AsyncIterator[TestClientProtocol]:
    """The same with a long idle timeout: a session that ends quickly did not end by idling."""
    async for client in _client(tmp_path, idle_s=30.0):
        yield client


@pytest.fixture
async def debug_client(tmp_path: Path) -> AsyncIterator[TestClientProtocol]:
    """The same, with every logger (libraries included) at DEBUG, rendered as JSON."""
    async for client in _client(tmp_path, level="DEBUG", format="json", noisy_level="DEBUG"):
        yield client


async def until_closed(ws: TestWebsocketConnectionProtocol) -> tuple[list[dict[str, Any]], int]:
    """Every message until the server closes, and the close code."""
    messages: list[dict[str, Any]] = []
    while True:
        try:
            messages.append(json.loads(await ws.receive()))
        except WebsocketDisconnectError as closed:
            code: int = closed.args[0]
            return messages, code


def check_one_terminal(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Exactly one terminal message, the last."""
    terminals = [m for m in messages if m["type"] in TERMINAL]
    assert len(terminals) == 1, messages
    assert messages[-1] is terminals[0]
    return terminals[0]


async def test_a_streamed_clip_gets_partials_finals_and_done(ws_client: TestClientProtocol) -> None:
    """Started, partials, finals, then done with the transcript and its totals; closed with 1000."""
    clip = tone_pcm(3.5)
    async with ws_client.websocket(f"{PATH}?model=fake/transcribe", headers=auth_headers()) as ws:
        await ws.send(START)
        for frame in frames(clip):
            await ws.send(frame)
        await ws.send(END)
        messages, code = await until_closed(ws)
    assert code == 1000
    started = messages[0]
    assert started == {
        "type": "started",
        "model": "fake/transcribe",
        "provider": "fake",
        "fallback_used": None,
        "retries": 0,
        "sample_rate": 16_000,
        "encoding": "pcm16",
    }
    done = check_one_terminal(messages)
    partials = [m for m in messages if m["type"] == "partial"]
    finals = [m for m in messages if m["type"] == "final"]
    assert len(partials) == 9  # a word per 400 ms of audio
    assert [f["segment"] for f in finals] == [0, 1]
    assert messages.index(partials[0]) < messages.index(finals[0])
    assert all(0.0 <= w["start_s"] < w["end_s"] <= 3.5 for f in finals for w in f["words"])
    assert done["type"] == "done"
    assert done["text"] == " ".join(f["text"] for f in finals)
    assert (done["words"], done["segments"]) == (9, 2)
    assert done["audio_seconds"] == pytest.approx(3.5)
    assert done["usage"] == {"audio_seconds": pytest.approx(3.5), "cost_usd": pytest.approx(3.5 / 60 * 0.006)}
    assert done["model"] == "fake/transcribe"


async def test_the_live_metrics_reach_the_metrics_page(ws_client: TestClientProtocol) -> None:
    """After a session: audio seconds, words, time to first partial and end-of-audio-to-final on ``/metrics``."""
    async with ws_client.websocket(f"{PATH}?model=fake/transcribe", headers=auth_headers()) as ws:
        await ws.send(START)
        for frame in frames(tone_pcm(1.0)):
            await ws.send(frame)
        await ws.send(END)
        await until_closed(ws)
    page = await (await ws_client.get("/metrics")).get_data(as_text=True)
    labels = 'model="fake/transcribe",provider="fake"'
    for line in (
        f"transcription_audio_seconds_total{{{labels}}} 1.0",
        f"transcription_live_first_partial_seconds_count{{{labels}}} 1.0",
        f"transcription_live_final_seconds_count{{{labels}}} 1.0",
        f"transcription_realtime_factor_count{{{labels}}} 1.0",
    ):
        assert line in page, line


@pytest.mark.parametrize(
    ("query", "start", "status", "close"),
    [
        ("model=fake/nope", START, 404, 4404),
        ("", START, 422, 4422),
        ("model=fake/transcribe", json.dumps({"type": "start", "sample_rate": 11_025}), 422, 4422),
        ("model=fake/transcribe", json.dumps({"type": "start", "sample_rate": 16_000, "bogus": 1}), 422, 4422),
        ("model=fake/transcribe", json.dumps({"type": "start", "sample_rate": 16_000, "encoding": "opus"}), 422, 4422),
        ("model=fake/echo", START, 422, 4422),
    ],
    ids=["unknown-model", "no-model", "bad-rate", "unknown-field", "bad-encoding", "not-stt"],
)
async def test_refusals_are_one_error_and_the_table_close_code(
    ws_client: TestClientProtocol, query: str, start: str, status: int, close: int
) -> None:
    """A bad model or start message: one ``error`` with the table's payload, then its close code."""
    async with ws_client.websocket(f"{PATH}?{query}", headers=auth_headers()) as ws:
        await ws.send(start)
        messages, code = await until_closed(ws)
    error = check_one_terminal(messages)
    assert error["type"] == "error"
    assert error["status"] == status
    assert set(error) == {"type", "code", "message", "retryable", "status"}
    assert code == close


async def test_a_silent_client_is_closed_after_the_idle_timeout(ws_client: TestClientProtocol) -> None:
    """No audio for ``audio.live_idle_timeout_s`` after a few frames: one error naming ``audio``, close 4422."""
    async with ws_client.websocket(f"{PATH}?model=fake/transcribe", headers=auth_headers()) as ws:
        await ws.send(START)
        for frame in frames(tone_pcm(0.5)):
            await ws.send(frame)
        messages, code = await until_closed(ws)
    error = check_one_terminal(messages)
    assert error["code"] == "validation_error"
    assert error["message"].startswith("audio: no audio for 0.5 s")
    assert code == 4422


async def test_a_vendor_failure_mid_session_is_one_error_after_the_partials(ws_client: TestClientProtocol) -> None:
    """The vendor fails after its first word: that partial, then one 502 error, close 4502."""
    start = json.dumps(
        {
            "type": "start",
            "sample_rate": 16_000,
            "metadata": {"fake_error": "provider_error", "fake_fail_after": "1"},
        }
    )
    async with ws_client.websocket(f"{PATH}?model=fake/transcribe", headers=auth_headers()) as ws:
        await ws.send(start)
        for frame in frames(tone_pcm(1.0)):
            await ws.send(frame)
        await ws.send(END)
        messages, code = await until_closed(ws)
    assert [m["type"] for m in messages] == ["started", "partial", "error"]
    assert messages[-1]["status"] == 502
    assert code == 4502


async def test_a_text_frame_other_than_end_is_a_protocol_error(ws_client: TestClientProtocol) -> None:
    """Mid-session, a JSON message that is not ``end`` ends the session with one 422 naming ``type``."""
    async with ws_client.websocket(f"{PATH}?model=fake/transcribe", headers=auth_headers()) as ws:
        await ws.send(START)
        await ws.send(b"\x00\x00" * 1600)
        await ws.send(json.dumps({"type": "pause"}))
        messages, code = await until_closed(ws)
    error = check_one_terminal(messages)
    assert error["message"].startswith("type:")
    assert code == 4422


async def test_audio_frames_never_reach_the_logs(
    debug_client: TestClientProtocol, caplog: pytest.LogCaptureFixture
) -> None:
    """With every logger at DEBUG, no log line of a session carries its audio, in any encoding; bytes handed to a
    logger are summarised by size."""
    caplog.set_level(logging.DEBUG)
    clip = tone_pcm(1.0)
    async with debug_client.websocket(f"{PATH}?model=fake/transcribe", headers=auth_headers()) as ws:
        await ws.send(START)
        for frame in frames(clip):
            await ws.send(frame)
        await ws.send(END)
        await until_closed(ws)
    frame = next(frames(clip, ms=100))
    structlog.get_logger("switchyard.live_transcription").debug("probe_frame", frame=frame)
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "_switchyard", False)]
    rendered = [handler.format(record) for record in caplog.records]
    assert any('"event": "live_transcription_ended"' in line for line in rendered)
    assert any('"frame": "<3200 bytes>"' in line for line in rendered)
    probes = [base64.b64encode(frame[200:260]).decode(), frame[200:230].hex(), repr(frame[200:230])[2:-1]]
    for line in rendered:
        for probe in probes:
            assert probe not in line


async def test_a_client_that_leaves_mid_session_is_billed_as_cancelled(patient_client: TestClientProtocol) -> None:
    """Closing the socket mid-session cancels the vendor session at once; its attempt is recorded as cancelled."""
    clock = asyncio.get_running_loop().time
    async with patient_client.websocket(f"{PATH}?model=fake/transcribe", headers=auth_headers()) as ws:
        await ws.send(START)
        for frame in frames(tone_pcm(1.0)):
            await ws.send(frame)
        assert json.loads(await ws.receive())["type"] == "started"
        assert json.loads(await ws.receive())["type"] == "partial"
        deadline = clock() + 1.0  # at once: neither after the handler's grace period nor an idle timeout
    line = 'provider_requests_total{model="fake/transcribe",outcome="cancelled",provider="fake"} 1.0'
    while True:
        page = await (await patient_client.get("/metrics")).get_data(as_text=True)
        if line in page or clock() > deadline:
            break
        await asyncio.sleep(0.02)
    assert line in page
    assert clock() <= deadline


async def test_a_socket_without_a_token_is_closed_4401(ws_client: TestClientProtocol) -> None:
    """Like every WebSocket under ``/api/``: without a token at the handshake the first message must be the auth
    message; a start message instead closes the socket with 4401, before any session."""
    async with ws_client.websocket(f"{PATH}?model=fake/transcribe") as ws:
        await ws.send(START)
        messages, code = await until_closed(ws)
    assert (messages, code) == ([], 4401)
