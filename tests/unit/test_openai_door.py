"""The OpenAI door's translations without a server: request bodies to the domain request, stream events to chunk
lines and Responses events, errors to OpenAI's error object (the SDK-driven conformance suite is
tests/e2e/test_openai_door.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.chat import ContentPart, ResponseFormat, ToolChoice
from domain.errors import (
    MalformedRequestError,
    NotFoundError,
    RateLimitError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from domain.speech import SpeechRequest
from domain.streaming import StreamEvent
from domain.transcription import Segment, Transcription, TranscriptionRequest, TranscriptionUsage, Word
from domain.types import StreamId
from entrypoints.http.doors.openai.audio import (
    renamed_refusal,
    speech_request,
    transcript_answer,
    transcription_request,
)
from entrypoints.http.doors.openai.body import convert
from entrypoints.http.doors.openai.chat import chat_request
from entrypoints.http.doors.openai.chunks import ChunkWriter
from entrypoints.http.doors.openai.embeddings import embedding_request, float32_base64
from entrypoints.http.doors.openai.errors import door_status, openai_error, stream_error
from entrypoints.http.doors.openai.responses import responses_chat_request
from entrypoints.http.doors.openai.responses_stream import ResponseEventWriter
from entrypoints.http.doors.openai.wire import OpenAIChatRequest, OpenAIEmbeddingRequest
from entrypoints.http.doors.openai.wire_audio import OpenAISpeechRequest
from entrypoints.http.doors.openai.wire_responses import OpenAIResponsesRequest

STREAM = StreamId("st_test")


def request(**fields: Any) -> OpenAIChatRequest:
    body = {"model": "fake/echo", "messages": [{"role": "user", "content": "hi"}], **fields}
    return convert(body, OpenAIChatRequest)


def refusal(body: dict[str, Any]) -> MalformedRequestError:
    with pytest.raises(MalformedRequestError) as caught:
        chat_request(convert(body, OpenAIChatRequest))
    return caught.value


def test_parameters_translate_to_the_domain_request() -> None:
    """stop as a string, max_completion_tokens over max_tokens, developer as system, parts, tools and formats."""
    chat = chat_request(
        request(
            messages=[
                {"role": "developer", "content": "be brief"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": "data:x"}}],
                },
            ],
            stop="END",
            max_tokens=10,
            max_completion_tokens=20,
            tools=[{"type": "function", "function": {"name": "f"}}],
            tool_choice={"type": "function", "function": {"name": "f"}},
            response_format={"type": "json_schema", "json_schema": {"name": "Echo", "schema": {"type": "object"}}},
            metadata={"fake_text": "x"},
            stream=True,
        )
    )
    assert [m.role for m in chat.messages] == ["system", "user"]
    assert chat.messages[1].content == [ContentPart("text", text="see"), ContentPart("image", image_url="data:x")]
    assert (chat.stop, chat.max_tokens, chat.stream) == (["END"], 20, True)
    assert chat.tools[0].parameters == {"type": "object", "properties": {}}
    assert chat.tool_choice == ToolChoice("tool", "f")
    assert chat.response_format == ResponseFormat("json_schema", json_schema={"type": "object"}, name="Echo")
    assert chat.metadata == {"fake_text": "x"}


def test_unknown_fields_are_ignored_and_wrong_types_name_the_parameter() -> None:
    """A field the door does not know is dropped; a known one of the wrong type is a 400 naming its path."""
    assert chat_request(request(logit_bias={"1": 2}, seed="not checked")).model == "fake/echo"
    assert refusal({"model": "m", "messages": [{"role": "user", "content": 3}]}).context["param"] == (
        "messages[0].content"
    )
    assert refusal({"model": "m", "messages": [{"content": "x"}]}).context["param"] == "messages[0].role"
    assert refusal({"model": "m", "messages": [], "stream": "yes"}).context["param"] == "stream"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 3}, "n"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [{"type": "custom", "function": {"name": "f"}}]}, "tools[0].type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "messages[0].content[0].type"),
    ],
)
def test_what_the_door_cannot_serve_is_a_400_naming_it(fields: dict[str, Any], param: str) -> None:
    """n other than 1, unknown tool choices, non-function tools, a schema-less json_schema, unserved parts."""
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], **fields}
    assert refusal(body).context["param"] == param


def lines(writer: ChunkWriter, *events: tuple[str, dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for seq, (kind, payload) in enumerate(events, start=1):
        for line in writer.frames(StreamEvent(STREAM, seq, kind, payload)).decode().split("\n\n"):
            if line:
                data = line.removeprefix("data: ")
                out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_events_become_chunks_ending_in_one_finish_one_usage_and_done() -> None:
    """start, text, tool calls and done become role, content, tool_calls, finish, usage chunks, then [DONE]."""
    writer = ChunkWriter("chatcmpl-x", 1, "echo", include_usage=True)
    out = lines(
        writer,
        ("start", {"model": "fake/echo"}),
        ("text", {"text": "Hi"}),
        ("usage", {"input_tokens": 1}),
        ("tool_call", {"phase": "start", "index": 0, "id": "c0", "name": "f"}),
        ("tool_call", {"phase": "delta", "index": 0, "id": "c0", "arguments": "{}"}),
        ("tool_call", {"phase": "end", "index": 0, "id": "c0"}),
        ("done", {"finish_reason": "tool_calls", "usage": {"input_tokens": 3, "output_tokens": 2}}),
    )
    deltas = [chunk["choices"][0]["delta"] for chunk in out[:-2]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
        {"tool_calls": [{"index": 0, "id": "c0", "type": "function", "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]},
        {},
    ]
    assert [chunk["choices"][0]["finish_reason"] for chunk in out[:-2]] == [None] * 4 + ["tool_calls"]
    assert {chunk["model"] for chunk in out[:-1]} == {"fake/echo"}
    assert out[-2]["choices"] == []
    assert out[-2]["usage"]["total_tokens"] == 5
    assert out[-1] == "[DONE]"


def test_error_and_cancelled_ends_are_one_error_line_without_done() -> None:
    """An error end is OpenAI's error object typed by the table's status of its code; cancelled is one too."""
    writer = ChunkWriter("chatcmpl-x", 1, "m", include_usage=False)
    (failed,) = lines(writer, ("error", {"code": "rate_limited", "message": "slow down", "retryable": True}))
    assert failed == {
        "error": {"code": "rate_limited", "message": "slow down", "param": None, "type": "rate_limit_error"}
    }
    (cancelled,) = lines(writer, ("cancelled", {"reason": "client"}))
    assert (cancelled["error"]["code"], cancelled["error"]["type"]) == ("cancelled", "server_error")


def test_errors_carry_openai_types_and_the_parameter() -> None:
    """Unknown models say model_not_found; validation names its field; codes map to OpenAI's types."""
    missing = openai_error(NotFoundError("unknown model 'x'", context={"model": "x"}), 404)
    assert (missing.code, missing.param, missing.type) == ("model_not_found", "model", "invalid_request_error")
    invalid = openai_error(ValidationError("messages[0].tool_call_id", "is required"), 422)
    assert invalid.param == "messages[0].tool_call_id"
    assert openai_error(RateLimitError("later"), 429).type == "rate_limit_error"
    assert stream_error({"code": "provider_timeout", "message": "slow"}).type == "server_error"


def test_embedding_inputs_are_text_and_base64_is_little_endian_float32() -> None:
    """Token-id inputs are refused naming the item; base64 packs float32 little-endian as the SDK decodes it."""
    body = convert({"model": "m", "input": ["a", [1, 2]]}, OpenAIEmbeddingRequest)
    with pytest.raises(MalformedRequestError) as caught:
        embedding_request(body)
    assert caught.value.context["param"] == "input[1]"
    assert float32_base64([1.0, -2.0]) == "AACAPwAAAMA="


def test_responses_input_items_become_one_conversation() -> None:
    """Messages, function calls (joined to the assistant turn before them) and their outputs, in order."""
    body = convert(
        {
            "model": "m",
            "instructions": "be brief",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                {"type": "message", "role": "assistant", "content": "let me look"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "g"},
                {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            ],
            "max_output_tokens": 5,
        },
        OpenAIResponsesRequest,
    )
    chat = responses_chat_request(body)
    assert (chat.system, chat.max_tokens) == ("be brief", 5)
    assert [m.role for m in chat.messages] == ["user", "assistant", "tool"]
    assert [c.id for c in chat.messages[1].tool_calls] == ["c1", "c2"]
    assert chat.messages[2].tool_call_id == "c1"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": [{"type": "web_search_call"}]}, "input[0].type"),
        ({"input": [{"content": "no role"}]}, "input[0].role"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ],
)
def test_what_the_responses_door_cannot_serve_is_a_400_naming_it(fields: dict[str, Any], param: str) -> None:
    """Unserved item and tool types, role-less messages, schema-less formats, stored history."""
    with pytest.raises(MalformedRequestError) as caught:
        responses_chat_request(convert({"model": "m", "input": "x", **fields}, OpenAIResponsesRequest))
    assert caught.value.context["param"] == param


def events(writer: ResponseEventWriter, *items: tuple[str, dict[str, Any]]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for seq, (kind, payload) in enumerate(items, start=1):
        for block in writer.frames(StreamEvent(STREAM, seq, kind, payload)).decode().split("\n\n"):
            if block:
                name, data = block.split("\n")
                out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def test_a_failed_response_stream_ends_with_error_and_response_failed() -> None:
    """Text already sent, then an error end: an error event and response.failed carrying the code, numbered on."""
    writer = ResponseEventWriter("resp_x", 1, "m")
    out = events(writer, ("start", {"model": "fake/echo"}), ("text", {"text": "Hi"}), ("error", {"code": "stalled"}))
    assert [name for name, _ in out] == [
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "error",
        "response.failed",
    ]
    assert [data["sequence_number"] for _, data in out] == list(range(6))
    assert out[-1][1]["response"]["error"]["code"] == "stalled"
    assert out[-1][1]["response"]["model"] == "fake/echo"


def test_a_length_cut_response_is_incomplete() -> None:
    """A done event with finish reason length ends with response.incomplete (reason max_output_tokens)."""
    writer = ResponseEventWriter("resp_x", 1, "m")
    out = events(writer, ("start", {}), ("text", {"text": "Hi"}), ("done", {"finish_reason": "length"}))
    name, data = out[-1]
    assert name == "response.incomplete"
    assert data["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert data["response"]["output"][0]["content"][0]["text"] == "Hi"


# --- audio -----------------------------------------------------------------------------------------------------------


def test_speech_body_becomes_the_domain_request_and_unserved_formats_name_the_parameter() -> None:
    """response_format is the domain's format (mp3 by default); an unknown format or SSE streaming is a 400."""
    body = convert({"model": "fake/speech", "input": "hi", "voice": "nova", "speed": 1.5, "x": 1}, OpenAISpeechRequest)
    assert speech_request(body) == SpeechRequest(model="fake/speech", input="hi", voice="nova", format="mp3", speed=1.5)
    pcm = convert({"model": "m", "input": "hi", "response_format": "pcm"}, OpenAISpeechRequest)
    assert speech_request(pcm).format == "pcm"
    for fields, param in (({"response_format": "ogg"}, "response_format"), ({"stream_format": "sse"}, "stream_format")):
        with pytest.raises(MalformedRequestError) as caught:
            speech_request(convert({"model": "m", "input": "hi", **fields}, OpenAISpeechRequest))
        assert openai_error(caught.value, 400).param == param


def form(**fields: str | list[str]) -> tuple[TranscriptionRequest, str]:
    values = {name: value if isinstance(value, list) else [value] for name, value in fields.items()}
    return transcription_request(values, audio=b"RIFF", filename="a.wav", content_type="audio/wav")


def test_transcription_form_maps_formats_to_timestamps() -> None:
    """json and text ask no timings; verbose_json segments, with word granularity words; unknown fields ignored."""
    request, answer = form(model="fake/transcribe", language="en", temperature="0.2")
    assert (request.timestamps, request.language, answer) == ("none", "en", "json")
    assert form(model="m", response_format="text")[0].timestamps == "none"
    assert form(model="m", response_format="verbose_json")[0].timestamps == "segment"
    words = form(model="m", response_format="verbose_json", **{"timestamp_granularities[]": ["segment", "word"]})
    assert words[0].timestamps == "word"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({}, "model"),
        ({"model": "m", "response_format": "srt"}, "response_format"),
        ({"model": "m", "stream": "true"}, "stream"),
        ({"model": "m", "timestamp_granularities[]": "word"}, "timestamp_granularities"),
        (
            {"model": "m", "response_format": "verbose_json", "timestamp_granularities[]": "char"},
            "timestamp_granularities",
        ),
    ],
)
def test_what_the_transcription_door_cannot_serve_is_a_400_naming_it(fields: dict[str, str], param: str) -> None:
    """A missing model, subtitles, streaming and granularities without verbose_json each name the parameter."""
    with pytest.raises(MalformedRequestError) as caught:
        form(**fields)
    assert openai_error(caught.value, 400).param == param


def test_transcript_answers_in_each_format() -> None:
    """text ends with a newline; json has the billed seconds; verbose_json segments with ids and words."""
    transcription = Transcription(
        model="fake/transcribe",
        text="hello there",
        language="en",
        duration_s=1.5,
        usage=TranscriptionUsage(audio_seconds=1.5, cost_usd=None),
        segments=[Segment(0.0, 1.5, "hello there")],
        words=[Word(0.0, 0.7, "hello"), Word(0.7, 1.5, "there")],
    )
    assert transcript_answer(transcription, "text") == (b"hello there\n", "text/plain; charset=utf-8")
    body, media_type = transcript_answer(transcription, "json")
    assert (json.loads(body), media_type) == (
        {"text": "hello there", "usage": {"seconds": 1.5, "type": "duration"}},
        "application/json",
    )
    verbose = json.loads(transcript_answer(transcription, "verbose_json")[0])
    assert (verbose["language"], verbose["duration"], verbose["task"]) == ("en", 1.5, "transcribe")
    assert [(s["id"], s["start"], s["end"], s["text"]) for s in verbose["segments"]] == [(0, 0.0, 1.5, "hello there")]
    assert [w["word"] for w in verbose["words"]] == ["hello", "there"]


def test_errors_name_the_upload_field_and_415_422_are_400() -> None:
    """A refused file type names ``file``; the door answers 415 and 422 as 400, other statuses as they are."""
    error = UnsupportedMediaTypeError("file: expected audio", context={"field": "file"})
    assert openai_error(error, 400).param == "file"
    assert [door_status(s) for s in (400, 404, 413, 415, 422, 429)] == [400, 404, 413, 400, 400, 429]
    renamed = renamed_refusal(ValidationError("timestamps", "openai/gpt-4o-transcribe gives no timestamps"))
    assert openai_error(renamed, 400).param == "response_format"
