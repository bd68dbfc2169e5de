"""Vendor adapters refuse tool-call arguments that are not JSON, or nested past the decoder, as a 422 (never a 500)."""

from __future__ import annotations

import pytest

from adapters.anthropic.messages import messages_params
from adapters.gemini.contents import to_contents
from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Message, ToolCall
from domain.errors import ValidationError

DEEP = "[" * 100_000 + "]" * 100_000


def _conversation(arguments: str) -> list[Message]:
    call = ToolCall("call_1", "lookup", arguments)
    return [
        Message("user", "hi"),
        Message("assistant", "", tool_calls=[call]),
        Message("tool", "42", tool_call_id="call_1"),
    ]


@pytest.mark.parametrize("arguments", [DEEP, "{not json"])
def test_anthropic_refuses_bad_tool_arguments_with_a_validation_error(arguments: str) -> None:
    """Anthropic's translation names the field instead of raising RecursionError or a decode error."""
    spec = ModelSpec(id="claude-test", provider="anthropic", capabilities=frozenset({"text", "tools"}))
    with pytest.raises(ValidationError) as caught:
        messages_params(ChatRequest(model=spec.qualified_id, messages=_conversation(arguments)), spec)
    assert caught.value.field == "messages.tool_calls.arguments"


@pytest.mark.parametrize("arguments", [DEEP, "{not json"])
def test_gemini_refuses_bad_tool_arguments_with_a_validation_error(arguments: str) -> None:
    """Gemini's translation names the field instead of raising RecursionError or a decode error."""
    with pytest.raises(ValidationError) as caught:
        to_contents(_conversation(arguments))
    assert caught.value.field == "messages.tool_calls.arguments"
