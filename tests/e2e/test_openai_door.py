"""The OpenAI front door, with the official ``openai`` SDK as the client of a real ``switchyard serve``: chat (whole,
streamed, tools, structured output, usage), embeddings, images, speech, transcriptions, models and each error class
the SDK raises. Where the native API serves the same scenario, the content is the same."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import av
import httpx
import openai
import pytest
from httpx_sse import connect_sse
from openai import OpenAI
from openai.types.chat import ChatCompletionChunk, ChatCompletionToolParam
from pydantic import BaseModel

from tests.support.app import auth_headers, mint
from tests.support.audio_clips import encoded, tone_wav
from tests.support.server import RunningServer, running_server

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("openai-door")) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[OpenAI]:
    """The SDK as an application would build it: base_url ending in /v1, a Switchyard token as the api_key."""
    with OpenAI(base_url=f"{server.base_url}/v1", api_key=mint(), max_retries=0, timeout=20.0) as sdk:
        yield sdk


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def native_stream_text(server: RunningServer, model: str, text: str) -> str:
    """The text of the same request streamed through the native ``POST /api/v1/chat``."""
    body = {"model": model, "messages": user(text), "stream": True}
    with (
        httpx.Client(timeout=20) as http,
        connect_sse(http, "POST", f"{server.base_url}/api/v1/chat", json=body, headers=auth_headers()) as source,
    ):
        events = [(sse.event, json.loads(sse.data)) for sse in source.iter_sse() if sse.data]
    assert events[-1][0] == "done"
    return "".join(payload["text"] for kind, payload in events if kind == "text")


# --- chat ------------------------------------------------------------------------------------------------------------


def test_whole_answer_is_a_chat_completion(client: OpenAI) -> None:
    """A non-streaming call answers a chat.completion with the echoed text, finish reason, usage and serving model."""
    answer = client.chat.completions.create(model="fake/echo", messages=user("hello through the door"))
    choice = answer.choices[0]
    assert (choice.message.role, choice.message.content, choice.finish_reason) == (
        "assistant",
        "hello through the door",
        "stop",
    )
    assert answer.object == "chat.completion"
    assert answer.model == "fake/echo"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (4, 4, 8)


def test_alias_and_unknown_fields_are_accepted(client: OpenAI) -> None:
    """A model alias resolves as on the native API; fields Switchyard does not serve are accepted and ignored."""
    answer = client.chat.completions.create(
        model="echo",
        messages=[{"role": "developer", "content": "be brief"}, *user("aliased")],
        seed=7,
        presence_penalty=0.5,
        user="end-user-42",
        max_completion_tokens=50,
        extra_body={"some_future_parameter": {"nested": True}},
    )
    assert (answer.model, answer.choices[0].message.content) == ("fake/echo", "aliased")


def test_stream_gives_the_native_text_once_one_finish_and_one_usage_chunk(
    client: OpenAI, server: RunningServer
) -> None:
    """Streaming yields the same text as the native SSE route, exactly one chunk with finish_reason and, with
    include_usage, exactly one usage chunk (the last, with no choices); the stream is a Switchyard stream."""
    text = "the same words on both doors"
    raw = client.chat.completions.with_raw_response.create(
        model="fake/slow", messages=user(text), stream=True, stream_options={"include_usage": True}
    )
    stream_id = raw.headers["X-Stream-ID"]
    chunks: list[ChatCompletionChunk] = list(raw.parse())
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == text == native_stream_text(server, "fake/slow", text)
    finishing = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishing == ["stop"]
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1
    assert with_usage[0] is chunks[-1]
    assert with_usage[0].choices == []
    assert with_usage[0].usage is not None
    assert with_usage[0].usage.completion_tokens == len(text.split())
    assert {c.id for c in chunks} == {f"chatcmpl-{stream_id}"}
    status = httpx.get(f"{server.base_url}/api/v1/streams/{stream_id}", headers=auth_headers(), timeout=10)
    assert status.json()["data"]["status"] == "done"


def test_stream_without_include_usage_has_no_usage_chunk(client: OpenAI) -> None:
    """Without stream_options.include_usage no chunk carries usage."""
    chunks = list(client.chat.completions.create(model="fake/echo", messages=user("no usage"), stream=True))
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


def test_parallel_tool_calls_whole_and_streamed(client: OpenAI) -> None:
    """Two tool calls come back whole with JSON arguments; streamed, each call's arguments arrive in several chunks
    (interleaved by index) and assemble to the same calls; the finish reason is tool_calls."""
    whole = client.chat.completions.create(model="fake/tools", messages=user("Paris"), tools=TOOLS)
    calls = whole.choices[0].message.tool_calls or []
    assert whole.choices[0].finish_reason == "tool_calls"
    assert [(c.type, c.function.name) for c in calls] == [("function", "get_weather"), ("function", "get_time")]  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"query": "Paris", "tool": "get_weather"}  # type: ignore[union-attr]

    pieces: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    finishes: list[str] = []
    for chunk in client.chat.completions.create(model="fake/tools", messages=user("Paris"), tools=TOOLS, stream=True):
        choice = chunk.choices[0]
        for delta in choice.delta.tool_calls or []:
            assert delta.function is not None
            if delta.function.name:
                names[delta.index] = delta.function.name
            if delta.function.arguments:
                pieces.setdefault(delta.index, []).append(delta.function.arguments)
        if choice.finish_reason:
            finishes.append(choice.finish_reason)
    assert finishes == ["tool_calls"]
    assert names == {0: "get_weather", 1: "get_time"}
    assert all(len(parts) >= 2 for parts in pieces.values())
    assert ["".join(pieces[i]) for i in (0, 1)] == [c.function.arguments for c in calls]  # type: ignore[union-attr]


def test_the_sdk_stream_helper_accumulates_the_tool_calls(client: OpenAI) -> None:
    """``chat.completions.stream`` (the SDK's accumulator) rebuilds the whole message from the chunks."""
    with client.chat.completions.stream(model="fake/tools", messages=user("Oslo"), tools=TOOLS) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [json.loads(c.function.arguments)["query"] for c in calls] == ["Oslo", "Oslo"]


def test_tool_choice_names_the_one_tool_or_none(client: OpenAI) -> None:
    """tool_choice naming a function calls only it; tool_choice none answers in text."""
    named = client.chat.completions.create(
        model="fake/tools",
        messages=user("Rome"),
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert [c.function.name for c in named.choices[0].message.tool_calls or []] == ["get_time"]  # type: ignore[union-attr]
    plain = client.chat.completions.create(model="fake/tools", messages=user("Rome"), tools=TOOLS, tool_choice="none")
    assert plain.choices[0].message.tool_calls is None
    assert plain.choices[0].message.content == "No tools were offered."


def test_tool_results_continue_the_conversation(client: OpenAI) -> None:
    """An assistant turn with tool calls and the tool's answer, sent back, reach the model."""
    answer = client.chat.completions.create(
        model="fake/tools",
        tools=TOOLS,
        messages=[
            *user("Lima"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "noon"},
        ],
    )
    assert answer.choices[0].message.content == "Tool results: noon"


class Echo(BaseModel):
    echo: str


def test_structured_output_parses_into_the_schema(client: OpenAI) -> None:
    """``chat.completions.parse`` with a pydantic model (a json_schema response format) gets it parsed."""
    parsed = client.chat.completions.parse(model="fake/echo", messages=user("structured"), response_format=Echo)
    assert parsed.choices[0].message.parsed == Echo(echo="structured")
    json_mode = client.chat.completions.create(
        model="fake/echo", messages=user("as json"), response_format={"type": "json_object"}
    )
    assert json.loads(json_mode.choices[0].message.content or "") == {"echo": "as json"}


# --- responses -----------------------------------------------------------------------------------------------------

RESPONSE_TOOLS: list[Any] = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}},
    {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}},
]


def test_responses_whole_and_streamed_give_the_same_text(client: OpenAI) -> None:
    """responses.create answers output_text with usage; the SDK's stream helper sees the same text in its deltas
    and rebuilds the same final response."""
    whole = client.responses.create(model="fake/echo", input="a response", instructions="be brief")
    assert (whole.status, whole.output_text, whole.model) == ("completed", "a response", "fake/echo")
    assert whole.usage is not None
    assert whole.usage.output_tokens == 2
    deltas: list[str] = []
    with client.responses.stream(model="fake/slow", input="a streamed response") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "a streamed response"
    assert final.status == "completed"


def test_responses_function_calls_whole_streamed_and_answered(client: OpenAI) -> None:
    """Two function calls come back as output items, whole or streamed (arguments in pieces); their outputs sent
    back as function_call_output items reach the model."""
    whole = client.responses.create(model="fake/tools", input="Paris", tools=RESPONSE_TOOLS)
    calls = [item for item in whole.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)["query"]) for c in calls] == [
        ("get_weather", "Paris"),
        ("get_time", "Paris"),
    ]
    pieces = 0
    with client.responses.stream(model="fake/tools", input="Paris", tools=RESPONSE_TOOLS) as stream:
        for event in stream:
            pieces += event.type == "response.function_call_arguments.delta"
        final = stream.get_final_response()
    streamed = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.arguments) for c in streamed] == [(c.call_id, c.arguments) for c in calls]
    assert pieces >= 4
    answered = client.responses.create(
        model="fake/tools",
        tools=RESPONSE_TOOLS,
        input=[
            {"role": "user", "content": "Lima"},
            {"type": "function_call", "call_id": "call_1", "name": "get_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "noon"},
        ],
    )
    assert answered.output_text == "Tool results: noon"


def test_responses_structured_output_and_unstored_history(client: OpenAI) -> None:
    """responses.parse fills output_parsed from a json_schema text format; previous_response_id is a 400."""
    parsed = client.responses.parse(model="fake/echo", input="shaped", text_format=Echo)
    assert parsed.output_parsed == Echo(echo="shaped")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="fake/echo", input="again", previous_response_id="resp_earlier")
    assert caught.value.param == "previous_response_id"


# --- embeddings, images, models ---------------------------------------------------------------------------------


def test_embeddings_base64_by_default_and_floats_match_the_native_route(client: OpenAI, server: RunningServer) -> None:
    """The SDK's default (base64) decodes to the native route's vectors (float32 precision); float works too."""
    texts = ["first text", "second text"]
    native = httpx.post(
        f"{server.base_url}/api/v1/embeddings",
        json={"model": "fake/embed", "input": texts, "dimensions": 8},
        headers=auth_headers(),
        timeout=10,
    ).json()["data"]["embeddings"]
    for encoding in ("base64", "float"):
        extra: dict[str, Any] = {} if encoding == "base64" else {"encoding_format": "float"}
        answer = client.embeddings.create(model="fake-embed", input=texts, dimensions=8, **extra)
        assert answer.model == "fake/embed"
        assert [item.index for item in answer.data] == [0, 1]
        for got, want in zip((item.embedding for item in answer.data), native, strict=True):
            assert got == pytest.approx(want, abs=1e-6)
        assert answer.usage.prompt_tokens == 4


def test_images_as_urls_of_the_media_store_or_inline(client: OpenAI, server: RunningServer) -> None:
    """Images come back as absolute URLs the same token can fetch, or as base64 with response_format b64_json."""
    by_url = client.images.generate(model="fake/image", prompt="a lighthouse", size="256x256", n=2)
    urls = [image.url or "" for image in by_url.data or []]
    assert len(urls) == 2
    assert all(url.startswith(f"{server.base_url}/api/v1/media/") for url in urls)
    fetched = httpx.get(urls[0], headers=auth_headers(), timeout=10)
    assert fetched.status_code == 200
    assert fetched.content.startswith(PNG_SIGNATURE)
    inline = client.images.generate(
        model="fake/image", prompt="a lighthouse", size="256x256", response_format="b64_json"
    )
    assert base64.b64decode((inline.data or [])[0].b64_json or "").startswith(PNG_SIGNATURE)


def test_models_list_and_retrieve(client: OpenAI) -> None:
    """Models are listed under their Switchyard ids and retrievable by id (with its '/') or alias."""
    ids = [model.id for model in client.models.list()]
    assert {"fake/echo", "fake/tools", "fake/embed", "fake/image"} <= set(ids)
    model = client.models.retrieve("fake/echo")
    assert (model.id, model.owned_by, model.object) == ("fake/echo", "fake", "model")
    assert client.models.retrieve("fake-embed").id == "fake/embed"


# --- errors ------------------------------------------------------------------------------------------------------


def test_unknown_model_is_not_found(client: OpenAI) -> None:
    """An unknown model raises NotFoundError with OpenAI's code and the param at fault."""
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nobody/nothing", messages=user("hi"))
    assert (caught.value.code, caught.value.param, caught.value.type) == (
        "model_not_found",
        "model",
        "invalid_request_error",
    )
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nobody/nothing")


def test_a_bad_key_is_an_authentication_error(server: RunningServer) -> None:
    """A key that is not a valid Switchyard token raises AuthenticationError."""
    with (
        OpenAI(base_url=f"{server.base_url}/v1", api_key="sk-not-a-token", max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        stranger.models.list()
    assert caught.value.type == "authentication_error"


def test_a_vendor_rate_limit_is_a_rate_limit_error_with_retry_after(client: OpenAI) -> None:
    """A rate limit the retries cannot wait out raises RateLimitError, and Retry-After says how long to wait."""
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="fake/echo",
            messages=user("too many"),
            metadata={"fake_error": "rate_limited", "fake_retry_after": "45"},
        )
    assert caught.value.response.headers["retry-after"] == "45"
    assert caught.value.code == "rate_limited"


def test_wrong_types_and_unserved_values_are_bad_requests_naming_the_parameter(client: OpenAI) -> None:
    """A field of the wrong type, or n other than 1, raises BadRequestError whose param names it."""
    with pytest.raises(openai.BadRequestError) as wrong_type:
        client.chat.completions.create(model="fake/echo", messages=user("hi"), temperature=cast(Any, "hot"))
    assert wrong_type.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as wrong_role:
        client.chat.completions.create(model="fake/echo", messages=cast(Any, [{"role": "robot", "content": "hi"}]))
    assert wrong_role.value.param == "messages[0].role"
    with pytest.raises(openai.BadRequestError) as many:
        client.chat.completions.create(model="fake/echo", messages=user("hi"), n=2)
    assert many.value.param == "n"


def test_semantic_errors_are_bad_requests(client: OpenAI) -> None:
    """A value of the right type that the rules refuse is OpenAI's 400 (the native API's 422), naming the field."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake/echo", messages=user("hi"), temperature=5)
    assert caught.value.param == "temperature"


def collect_text(chunks: Iterator[ChatCompletionChunk], into: list[str]) -> None:
    """Append each chunk's text to ``into`` as it arrives (what was received before an error stays there)."""
    for chunk in chunks:
        into.append(chunk.choices[0].delta.content or "")


def test_a_failure_mid_stream_raises_after_the_text_so_far(client: OpenAI) -> None:
    """A vendor failing after two words ends the stream with an error line: the SDK raises APIError."""
    received: list[str] = []
    stream = client.chat.completions.create(
        model="fake/echo",
        messages=user("one two three four"),
        stream=True,
        metadata={"fake_error": "provider_error", "fake_fail_after": "2"},
    )
    with pytest.raises(openai.APIError) as caught:
        collect_text(iter(stream), received)
    assert "".join(received) == "one two"
    assert caught.value.code == "provider_error"


# --- audio -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response_format", "muxer", "codec"),
    [("mp3", "mp3", "mp3float"), ("wav", "wav", "pcm_s16le"), ("opus", "ogg", "opus")],
)
def test_speech_streams_audio_that_decodes(
    client: OpenAI, tmp_path: Path, response_format: str, muxer: str, codec: str
) -> None:
    """The SDK's streaming response writes a file PyAV decodes in the asked format, with a non-zero duration."""
    target = tmp_path / f"speech.{response_format}"
    with client.audio.speech.with_streaming_response.create(
        model="fake/speech",
        input="hello through the door",
        voice="nova",
        response_format=cast(Any, response_format),
        speed=1.0,
    ) as response:
        assert response.headers["X-Switchyard-Model"] == "fake/speech"
        response.stream_to_file(target)
    with av.open(str(target)) as container:
        stream = container.streams.audio[0]
        assert (container.format.name, stream.codec_context.name) == (muxer, codec)
        seconds = sum(frame.samples for frame in container.decode(stream)) / stream.rate
    assert seconds > 0.5


def test_transcription_json_text_and_verbose(client: OpenAI) -> None:
    """json answers the text and the billed seconds; text a plain string; verbose_json segments (and words)."""
    clip = ("clip.mp3", encoded(tone_wav(1.5), "mp3"), "audio/mpeg")
    plain = client.audio.transcriptions.create(file=clip, model="fake/transcribe")
    assert plain.text
    assert plain.usage is not None
    assert plain.usage.type == "duration"
    assert plain.usage.seconds == pytest.approx(1.5, abs=0.1)
    text = client.audio.transcriptions.create(file=clip, model="fake-stt", response_format="text")
    assert isinstance(text, str)
    assert text.strip() == plain.text
    verbose = client.audio.transcriptions.create(
        file=clip, model="fake/transcribe", response_format="verbose_json", timestamp_granularities=["word", "segment"]
    )
    assert verbose.text == plain.text
    assert verbose.duration == pytest.approx(1.5, abs=0.1)
    assert verbose.segments
    assert verbose.segments[-1].end <= verbose.duration + 0.01
    assert verbose.words
    assert len(verbose.words) == len(plain.text.split())
    segments_only = client.audio.transcriptions.create(
        file=clip, model="fake/transcribe", response_format="verbose_json"
    )
    assert segments_only.segments
    assert segments_only.words is None


def test_audio_errors_are_the_sdk_exceptions(client: OpenAI) -> None:
    """An unknown model is NotFoundError; a file that is not audio, an unserved format and a bad voice are
    BadRequestError naming the parameter."""
    clip = ("clip.wav", tone_wav(0.5), "audio/wav")
    with pytest.raises(openai.NotFoundError) as missing:
        client.audio.transcriptions.create(file=clip, model="nobody/nothing")
    assert (missing.value.code, missing.value.param) == ("model_not_found", "model")
    with pytest.raises(openai.NotFoundError):
        client.audio.speech.create(model="nobody/nothing", input="hi", voice="alloy")
    with pytest.raises(openai.BadRequestError) as not_audio:
        client.audio.transcriptions.create(file=("notes.txt", b"just text", "text/plain"), model="fake/transcribe")
    assert not_audio.value.param == "file"
    with pytest.raises(openai.BadRequestError) as undecodable:
        client.audio.transcriptions.create(file=("clip.wav", b"RIFF not really", "audio/wav"), model="fake/transcribe")
    assert undecodable.value.param == "file"
    with pytest.raises(openai.BadRequestError) as subtitles:
        client.audio.transcriptions.create(file=clip, model="fake/transcribe", response_format="srt")
    assert subtitles.value.param == "response_format"
    with pytest.raises(openai.BadRequestError) as voice:
        client.audio.speech.create(model="fake/speech", input="hi", voice=cast(Any, "nobody"))
    assert voice.value.param == "voice"


def test_a_transcription_upload_may_exceed_the_json_body_limit(client: OpenAI) -> None:
    """A 1.9 MB WAV (over limits.max_body_bytes, 1 MB) is transcribed through the door, as on the native route."""
    clip = tone_wav(60.0)
    assert len(clip) > 1024 * 1024 + 64 * 1024
    answer = client.audio.transcriptions.create(file=("long.wav", clip, "audio/wav"), model="fake/transcribe")
    assert answer.text
    assert answer.usage is not None
    assert answer.usage.type == "duration"
    assert answer.usage.seconds == pytest.approx(60.0, abs=0.1)
