"""The Anthropic door's pure parts: the request translation, the error mapping and the block sequencer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.chat import ContentPart, Message, ProviderResponse, ToolCall, Usage
from domain.errors import ProviderError, ValidationError
from entrypoints.http.doors.anthropic.errors import stream_failure, wire_status
from entrypoints.http.doors.anthropic.stream import BlockSequencer, Frame
from entrypoints.http.doors.anthropic.translate import chat_request, message_response
from entrypoints.http.doors.anthropic.wire import AnthropicCountTokensRequest, AnthropicMessagesRequest, dump, read


def translate(**body: Any) -> Any:
    return chat_request(read({"model": "m", "max_tokens": 10, **body}, AnthropicMessagesRequest))


def test_tool_results_become_tool_messages_before_the_turns_text() -> None:
    """tool_result blocks become ``tool`` messages named after their call, ahead of the same turn's text; the
    assistant's tool_use becomes its tool_calls; thinking blocks are dropped."""
    request = translate(
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "s"},
                    {"type": "text", "text": "checking"},
                    {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Oslo"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "also, thanks"},
                    {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "sunny"}]},
                ],
            },
        ]
    )
    assert request.messages == [
        Message("user", "weather?"),
        Message("assistant", "checking", tool_calls=[ToolCall("t1", "weather", '{"city": "Oslo"}')]),
        Message("tool", "sunny", tool_call_id="t1", name="weather"),
        Message("user", [ContentPart("text", text="also, thanks")]),
    ]


def test_choices_formats_and_images_translate() -> None:
    """``any`` is the domain's ``required``; output_config.format is a json_schema response format; an image URL
    block is an image part; metadata scalars become text and nulls vanish."""
    request = translate(
        tools=[{"name": "t", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any"},
        output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}, "effort": "low"},
        metadata={"user_id": None, "fake_fail_times": 1, "flag": True},
        messages=[
            {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}
        ],
    )
    assert request.tool_choice is not None
    assert request.tool_choice.mode == "required"
    assert request.response_format is not None
    assert (request.response_format.type, request.response_format.json_schema) == ("json_schema", {"type": "object"})
    assert request.metadata == {"fake_fail_times": "1", "flag": "true"}
    assert request.messages[0].content == [ContentPart("image", image_url="https://x/y.png")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"name": "t"}]}, "tools[0].input_schema"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"metadata": {"k": {"nested": 1}}}, "metadata.k"),
        ({"temperature": 1.2}, "temperature"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}]},
            "messages[0].content[0].source.media_type",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "x"}]}]},
            "messages[0].content[0].type",
        ),
    ],
)
def test_rules_the_types_cannot_express_name_the_field(body: dict[str, Any], field: str) -> None:
    """Each rule beyond the wire types is a ValidationError naming the field as the client wrote it."""
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    with pytest.raises(ValidationError) as caught:
        translate(**body)
    assert caught.value.field == field


def test_count_tokens_request_has_no_generation_parameters() -> None:
    """count_tokens needs no max_tokens and translates to a request without one."""
    request = chat_request(
        read(
            {"model": "m", "system": "s", "messages": [{"role": "user", "content": "hi"}]}, AnthropicCountTokensRequest
        )
    )
    assert (request.system, request.max_tokens, request.stream) == ("s", None, False)


def test_message_response_blocks_and_stop_reason() -> None:
    """Text then tool_use blocks (only their own keys), ``tool_use`` when calls came with plain ``stop``, and
    input without cache reads."""
    response = ProviderResponse(
        text="let me see",
        model="fake/tools",
        provider="fake",
        finish_reason="stop",
        usage=Usage(input_tokens=10, output_tokens=4, cached_tokens=6),
        tool_calls=[ToolCall("c1", "weather", '{"city": "Oslo"}')],
    )
    message = dump(message_response(response, "msg_1"))
    assert message["content"] == [
        {"type": "text", "text": "let me see"},
        {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Oslo"}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {"input_tokens": 4, "output_tokens": 4, "cache_read_input_tokens": 6}
    broken = ProviderResponse("", "fake/tools", "fake", "tool_calls", tool_calls=[ToolCall("c1", "w", "[1]")])
    with pytest.raises(ProviderError):
        message_response(broken, "msg_2")


@pytest.mark.parametrize(
    ("kind", "payload", "status", "error_type"),
    [
        ("error", {"code": "rate_limited", "message": "slow down", "retryable": True}, 429, "rate_limit_error"),
        ("error", {"code": "not_found", "message": "no such model"}, 404, "not_found_error"),
        ("error", {"code": "provider_error", "message": "vendor failed"}, 502, "api_error"),
        ("error", {"code": "stalled", "message": "silent", "retryable": True}, 529, "overloaded_error"),
        ("error", {"code": "internal_error", "message": "boom"}, 500, "api_error"),
        ("cancelled", {"reason": "shutdown"}, 529, "overloaded_error"),
        ("cancelled", {"reason": "client"}, 400, "invalid_request_error"),
    ],
)
def test_stream_failures_map_through_the_error_table(
    kind: str, payload: dict[str, Any], status: int, error_type: str
) -> None:
    """A failed stream's code is looked up in the one error table, then said in Anthropic's terms."""
    got_status, body = stream_failure(kind, payload, "req-1")
    assert (got_status, body["type"], body["request_id"]) == (status, "error", "req-1")
    assert isinstance(body["error"], dict)
    assert body["error"]["type"] == error_type


def test_table_statuses_land_on_anthropics() -> None:
    """422 and 415 are Anthropic's 400, 503 its 529, anything unknown a 400 or 500."""
    assert [wire_status(s)[0] for s in (400, 415, 422, 401, 403, 404, 413, 429, 500, 502, 503, 504, 418, 599)] == [
        400,
        400,
        400,
        401,
        403,
        404,
        413,
        429,
        500,
        502,
        529,
        504,
        400,
        500,
    ]


# --- the block sequencer -----------------------------------------------------------------------------------------

Step = tuple[str, int, str]  # ("text", -, text) | ("start" | "delta" | "end", call, arguments)


@st.composite
def interleavings(draw: st.DrawFn) -> list[Step]:
    """Text words and up to three tool calls (start, argument pieces, end), interleaved in any per-call order."""
    calls = draw(st.lists(st.lists(st.text('{}":ab ', min_size=1, max_size=4), max_size=3), max_size=3))
    lanes: list[list[Step]] = [
        [("start", i, ""), *(("delta", i, piece) for piece in pieces), ("end", i, "")] for i, pieces in enumerate(calls)
    ]
    lanes.extend([[("text", -1, word)] for word in draw(st.lists(st.sampled_from(["a ", "b ", "c "]), max_size=5))])
    steps: list[Step] = []
    while any(lanes):
        lane = draw(st.sampled_from([lane for lane in lanes if lane]))
        steps.append(lane.pop(0))
    return steps


def play(steps: list[Step]) -> list[Frame]:
    sequencer = BlockSequencer()
    frames: list[Frame] = []
    for kind, call, text in steps:
        if kind == "text":
            frames += sequencer.text(text)
        elif kind == "start":
            frames += sequencer.tool_start(call, f"id{call}", f"tool{call}")
        elif kind == "delta":
            frames += sequencer.tool_delta(call, f"id{call}", text)
        else:
            frames += sequencer.tool_end(call)
    return frames + sequencer.close()


@given(interleavings())
def test_blocks_are_sequential_and_lose_nothing(steps: list[Step]) -> None:
    """Whatever the interleaving: blocks open one at a time with indexes 0, 1, 2 ..., every delta belongs to the
    open block, each call's arguments arrive whole in its own block (calls in start order), and the text, in
    order, is all there."""
    open_block: int | None = None
    started: list[dict[str, Any]] = []
    pieces: dict[int, list[str]] = {}
    for name, data in play(steps):
        if name == "content_block_start":
            assert open_block is None
            assert data["index"] == len(started)
            open_block = data["index"]
            started.append(data["content_block"])
        elif name == "content_block_delta":
            assert open_block is not None
            assert data["index"] == open_block
            delta = data["delta"]
            pieces.setdefault(open_block, []).append(delta.get("text", delta.get("partial_json", "")))
        else:
            assert name == "content_block_stop"
            assert data["index"] == open_block
            open_block = None
    assert open_block is None
    calls = [i for i, block in enumerate(started) if block["type"] == "tool_use"]
    starts = [call for kind, call, _ in steps if kind == "start"]
    assert [started[i]["name"] for i in calls] == [f"tool{call}" for call in starts]
    for index, call in zip(calls, starts, strict=True):
        expected = "".join(text for kind, c, text in steps if kind == "delta" and c == call)
        assert "".join(pieces.get(index, [])) == expected
    texts = [i for i, block in enumerate(started) if block["type"] == "text"]
    assert "".join("".join(pieces.get(i, [])) for i in texts) == "".join(t for k, _, t in steps if k == "text")


def test_a_parallel_call_waits_for_the_open_one_then_goes_out_whole() -> None:
    """Interleaved argument deltas of two calls: the second call's block starts only after the first stops."""
    frames = play(
        [
            ("start", 0, ""),
            ("start", 1, ""),
            ("delta", 0, '{"a":'),
            ("delta", 1, '{"b":'),
            ("delta", 0, "1}"),
            ("delta", 1, "2}"),
            ("end", 0, ""),
            ("end", 1, ""),
        ]
    )
    assert [(name, data.get("index")) for name, data in frames] == [
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
    ]
    assert json.loads(frames[5][1]["delta"]["partial_json"] + frames[6][1]["delta"]["partial_json"]) == {"b": 2}


def test_blocks_go_out_as_soon_as_their_turn_comes() -> None:
    """Nothing waits for the end of the message: text closes when a call opens, text said during a call waits only
    until that call ends."""
    sequencer = BlockSequencer()

    def names(frames: list[Frame]) -> list[tuple[str, Any]]:
        return [(name, data["index"]) for name, data in frames]

    assert names(sequencer.text("a")) == [("content_block_start", 0), ("content_block_delta", 0)]
    assert names(sequencer.tool_start(0, "id0", "t")) == [("content_block_stop", 0), ("content_block_start", 1)]
    assert names(sequencer.tool_delta(0, "id0", "{}")) == [("content_block_delta", 1)]
    assert sequencer.text("b") == []
    assert names(sequencer.tool_end(0)) == [
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
    ]
    assert names(sequencer.close()) == [("content_block_stop", 2)]
