"""WS /api/v1/ws/realtime through the app: a conversation with the fake gets audio frames, transcripts and turn ends,
then usage, done and 1000; refusals (a bad field, an unknown model, a model without realtime, a malformed or
unexpected message) end with one ``error`` naming the field and the table's close code; a client leaving cancels the
session; the realtime metrics reach ``/metrics``; audio never reaches the logs."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart.testing.connections import WebsocketDisconnectError
from quart.typing import TestClientProtocol, TestWebsocketConnectionProtocol

from entrypoints.http.app import create_app
from tests.support.app import auth_headers, make_container, make_settings
from tests.support.live_audio import frames, silence, tone_pcm

PATH = "/api/v1/ws/realtime"
TERMINAL = ("done", "error", "cancelled")
BYTES_REPR = re.compile(r"(?<!\w)b['\"]")


@pytest.fixture
async def ws_client(tmp_path: Path) -> AsyncIterator[TestClientProtocol]:
    """The app with the fake vendor (whose builder registers its realtime provider)."""
    settings = make_settings(tmp_path, realtime={"idle_timeout_s": 5.0})
    container = make_container(settings)
    app = create_app(container)
    async with app.test_app():
        yield app.test_client()
    container.unwire()


def update(**session: Any) -> str:
    return json.dumps({"type": "session.update", "session": session})


async def until_closed(ws: TestWebsocketConnectionProtocol) -> tuple[list[dict[str, Any]], int, int]:
    """Every JSON message until the server closes, the audio bytes, and the close code."""
    messages: list[dict[str, Any]] = []
    audio = 0
    while True:
        try:
            frame = await ws.receive()
        except WebsocketDisconnectError as closed:
            return messages, audio, int(closed.args[0])
        if isinstance(frame, bytes):
            audio += len(frame)
        else:
            messages.append(json.loads(frame))


async def until(ws: TestWebsocketConnectionProtocol, kind: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while not messages or messages[-1]["type"] != kind:
        frame = await ws.receive()
        if isinstance(frame, str):
            messages.append(json.loads(frame))
    return messages


def one_terminal(messages: list[dict[str, Any]]) -> dict[str, Any]:
    terminals = [m for m in messages if m["type"] in TERMINAL]
    assert len(terminals) == 1, messages
    assert messages[-1] is terminals[0]
    return terminals[0]


async def test_a_conversation_ends_with_usage_done_and_1000(ws_client: TestClientProtocol) -> None:
    """session.created, a committed spoken turn and a text turn answered, then usage and done; closed with 1000."""
    async with ws_client.websocket(f"{PATH}?model=fake-realtime", headers=auth_headers()) as ws:
        await ws.send(update(turn_detection="none", input_audio={"sample_rate": 16000}))
        for frame in frames(tone_pcm(1.0)):
            await ws.send(frame)
        await ws.send(json.dumps({"type": "input.commit"}))
        first = await until(ws, "turn.done")
        await ws.send(json.dumps({"type": "input.text", "text": "hello"}))
        second = await until(ws, "turn.done")
        await ws.send(json.dumps({"type": "session.end"}))
        messages, _, code = await until_closed(ws)
    assert first[0] == {
        "type": "session.created",
        "model": "fake/realtime",
        "provider": "fake",
        "fallback_used": None,
        "retries": 0,
        "output_sample_rate": 24000,
        "input_audio": {"format": "pcm16", "sample_rate": 16000},
        "output_audio": {"format": "pcm16", "sample_rate": 24000},
    }
    assert [m["type"] for m in first[1:3]] == ["transcript.input", "transcript.output"]
    assert [m["text"] for m in second if m["type"] == "transcript.output" and m["final"]] == ["You said: hello"]
    assert [m["type"] for m in messages] == ["usage", "done"]
    assert messages[0]["turns"] == 2
    assert messages[0]["input_audio_seconds"] == pytest.approx(1.0)
    assert code == 1000


async def test_a_server_vad_turn_says_speech_started_and_stopped_and_is_timed(ws_client: TestClientProtocol) -> None:
    """Server VAD: the client hears ``speech.started`` then ``speech.stopped`` (before the answer's audio), and that
    turn's wait for its first audio reaches ``realtime_first_audio_seconds`` (no commit, text or tool result came)."""
    async with ws_client.websocket(f"{PATH}?model=fake-realtime", headers=auth_headers()) as ws:
        await ws.send(update(input_audio={"sample_rate": 16000}))
        await until(ws, "session.created")
        for frame in frames(tone_pcm(0.8) + silence(0.6)):
            await ws.send(frame)
        kinds: list[str] = []
        audio_at: int | None = None
        while not kinds or kinds[-1] != "turn.done":
            received = await ws.receive()
            if isinstance(received, bytes):
                audio_at = len(kinds) if audio_at is None else audio_at
            else:
                kinds.append(json.loads(received)["type"])
        await ws.send(json.dumps({"type": "session.end"}))
        await until_closed(ws)
    assert kinds.count("speech.started") == kinds.count("speech.stopped") == 1, kinds
    assert audio_at is not None
    assert kinds.index("speech.started") < kinds.index("speech.stopped") < audio_at
    page = await (await ws_client.get("/metrics")).get_data(as_text=True)
    assert 'realtime_first_audio_seconds_count{model="fake/realtime",provider="fake"} 1.0' in page


async def test_a_client_leaving_while_the_open_is_retried_cancels_the_session(ws_client: TestClientProtocol) -> None:
    """The vendor refuses the open with a rate limit and ``Retry-After: 20``; the client leaves during that wait: the
    session ends as cancelled (counted, and its slot freed) without waiting out the backoff or the route's grace."""
    metadata = {"fake_error": "rate_limited", "fake_fail_times": "1", "fake_retry_after": "20", "fake_key": "leave"}
    async with ws_client.websocket(f"{PATH}?model=fake-realtime", headers=auth_headers()) as ws:
        await ws.send(update(metadata=metadata))
        async with asyncio.timeout(10):  # until the runner waits to retry (only the metrics say so)
            while True:
                if "provider_retries_total{" in await (await ws_client.get("/metrics")).get_data(as_text=True):
                    break
                await asyncio.sleep(0.01)
    page = await (await ws_client.get("/metrics")).get_data(as_text=True)
    assert 'realtime_sessions_total{model="fake/realtime",outcome="cancelled",provider="fake"} 1.0' in page


@pytest.mark.parametrize(
    ("query", "first", "code", "error", "field"),
    [
        ("?model=fake-realtime", update(input_audio={"sample_rate": 8000}), 4422, "validation_error", "sample_rate"),
        ("?model=fake-realtime", update(voice="nobody"), 4422, "validation_error", "session.voice"),
        ("?model=fake-realtime", update(tools=[{"name": "a b"}]), 4422, "validation_error", "tools[0].name"),
        ("?model=fake-realtime", update(colour="blue"), 4422, "request_validation_error", "colour"),
        ("?model=fake-realtime", json.dumps({"type": "input.commit"}), 4422, "request_validation_error", "type"),
        ("?model=fake/nope", update(), 4404, "not_found", ""),
        ("?model=fake/echo", update(), 4422, "", ""),
        ("", update(), 4422, "request_validation_error", "model"),
    ],
)
async def test_a_refused_session_gets_one_error_and_the_table_close_code(
    ws_client: TestClientProtocol, query: str, first: str, code: int, error: str, field: str
) -> None:
    """Refusals before any vendor call: one ``error`` (naming the field where there is one), then the close code."""
    async with ws_client.websocket(f"{PATH}{query}", headers=auth_headers()) as ws:
        await ws.send(first)
        messages, _, closed = await until_closed(ws)
    terminal = one_terminal(messages)
    assert terminal["type"] == "error"
    if error:
        assert terminal["code"] == error
    assert field in json.dumps(terminal) or field in terminal["message"]
    assert closed == code


async def test_a_temperature_the_model_cannot_honour_is_a_4422_naming_it(tmp_path: Path) -> None:
    """A model whose catalog entry lists ``temperature`` in ``unsupported_params`` (as OpenAI's GA realtime models
    do): a ``session.update`` with one gets one ``error`` naming ``session.temperature``, then 4422."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[[models]]\nid = "realtime-cold"\nprovider = "fake"\ncapabilities = ["realtime"]\n'
        'unsupported_params = ["temperature"]\naudio_price_per_minute = 0.06\n'
    )
    settings = make_settings(tmp_path, providers={"catalog_path": catalog})
    container = make_container(settings)
    app = create_app(container)
    path = f"{PATH}?model=fake/realtime-cold"
    async with app.test_app(), app.test_client().websocket(path, headers=auth_headers()) as ws:
        await ws.send(update(temperature=0.5))
        messages, _, code = await until_closed(ws)
    container.unwire()
    terminal = one_terminal(messages)
    assert (terminal["type"], terminal["code"], terminal["status"]) == ("error", "validation_error", 422)
    assert terminal["message"].startswith("session.temperature: "), terminal
    assert "fake/realtime-cold" in terminal["message"]
    assert code == 4422


@pytest.mark.parametrize(
    "message",
    [
        {"type": "input.dance"},
        {"type": "input.text"},
        {"type": "tool.result", "call_id": "c"},
        {"type": "session.update", "session": {}},
    ],
)
async def test_a_bad_control_ends_the_session_naming_the_field(
    ws_client: TestClientProtocol, message: dict[str, Any]
) -> None:
    """After session.created, an unknown or incomplete control is a 4422 ``error`` and the session ends."""
    async with ws_client.websocket(f"{PATH}?model=fake-realtime", headers=auth_headers()) as ws:
        await ws.send(update())
        await until(ws, "session.created")
        await ws.send(json.dumps(message))
        messages, _, code = await until_closed(ws)
    terminal = one_terminal(messages)
    assert terminal["type"] == "error"
    assert terminal["status"] == 422
    assert code == 4422


async def test_metrics_and_logs(ws_client: TestClientProtocol, caplog: pytest.LogCaptureFixture) -> None:
    """After a session: the realtime metrics on ``/metrics``; one ``realtime_session_ended`` line; no audio logged."""
    caplog.set_level(logging.DEBUG)
    async with ws_client.websocket(f"{PATH}?model=fake-realtime", headers=auth_headers()) as ws:
        await ws.send(update(input_audio={"sample_rate": 16000}, turn_detection="none"))
        for frame in frames(tone_pcm(0.5)):
            await ws.send(frame)
        await ws.send(json.dumps({"type": "input.commit"}))
        await until(ws, "turn.done")
        await ws.send(json.dumps({"type": "session.end"}))
        await until_closed(ws)
    page = await (await ws_client.get("/metrics")).get_data(as_text=True)
    labels = 'model="fake/realtime",provider="fake"'
    for line in (
        'realtime_sessions_total{model="fake/realtime",outcome="done",provider="fake"} 1.0',
        f'realtime_audio_seconds_total{{direction="in",{labels}}} 0.5',
        f'realtime_turns_total{{{labels},status="completed"}} 1.0',
        f"realtime_first_audio_seconds_count{{{labels}}} 1.0",
    ):
        assert line in page, line
    ended = [r for r in caplog.records if r.getMessage() == "realtime_session_ended"]
    assert len(ended) == 1
    # a bytes repr (b'...' after a non-word character: not the b' that ends a hex request id)
    assert not any("\\x00" in r.getMessage() or BYTES_REPR.search(r.getMessage()) for r in caplog.records)
