"""Use case helper: what a cut chat attempt is billed when the vendor never said.

Vendors report usage at the end of a stream, so an attempt cut before then (the owner cancelled, a shutdown, the
grace period or the stall watchdog closed the run, or the vendor failed after its first output) has no figures of
its own, and billing it nothing would let a client cancel just before ``done`` and pay nothing. Such an attempt is
billed on the vendor's usage where it sent some, and otherwise on a count, by the ``TokenCounter``, of:

- the request: system prompt, message texts, earlier tool calls (names and arguments), tool definitions (name,
  description, JSON Schema) and a JSON response schema, plus the chat framing OpenAI documents (3 tokens per
  message, 3 to prime the reply). Image parts are not counted (vendors price them by size): an underestimate;
- the output delivered: text, reasoning (also counted as reasoning tokens) and tool call names and arguments.

The counter is tiktoken's ``cl100k_base`` in production: close for OpenAI-family models, an approximation for
Anthropic, Gemini and the others. Either way the record is marked ``estimated``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from attrs import frozen

from domain.chat import ChatRequest, Message, ToolCall, Usage
from ports.tokens import TokenCounter
from services.chat_events import ResponseAssembler

__all__ = ["Delivered", "bill_cut_attempt", "count_request"]

PER_MESSAGE: Final = 3
"""Tokens of chat framing around each message (OpenAI's documented count for its chat format)."""
REPLY_PRIMING: Final = 3
"""Tokens that prime the assistant's reply."""


@frozen
class Delivered:
    """What an attempt delivered before it was cut (a snapshot: counting may run in another thread)."""

    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()

    @classmethod
    def of(cls, assembler: ResponseAssembler) -> Delivered:
        """The output ``assembler`` has seen so far."""
        return cls(assembler.text, assembler.reasoning, tuple(assembler.tool_calls()))

    @property
    def empty(self) -> bool:
        return not (self.text or self.reasoning or self.tool_calls)


def bill_cut_attempt(
    counter: TokenCounter, request: ChatRequest, delivered: Delivered, reported: Usage | None
) -> tuple[Usage, bool]:
    """The usage to bill a cut attempt and whether any of it is estimated.

    The vendor's ``reported`` figures win where they are non-zero; input (or output, when some was delivered) the
    vendor did not report is counted. CPU-bound: about 0.1 s per MB of text, so callers on an event loop run it in a
    thread."""
    vendor = reported or Usage()
    estimate_input = vendor.input_tokens == 0
    estimate_output = vendor.output_tokens == 0 and not delivered.empty
    input_tokens = count_request(counter, request) if estimate_input else vendor.input_tokens
    if estimate_output:
        reasoning = counter.count(delivered.reasoning)
        calls = sum(counter.count(call.name) + counter.count(call.arguments) for call in delivered.tool_calls)
        output, reasoning_tokens = counter.count(delivered.text) + reasoning + calls, reasoning
    else:
        output, reasoning_tokens = vendor.output_tokens, vendor.reasoning_tokens
    usage = Usage(input_tokens, output, vendor.cached_tokens, reasoning_tokens)
    return usage, estimate_input or estimate_output


def count_request(counter: TokenCounter, request: ChatRequest) -> int:
    """Estimated input tokens of ``request`` (see the module docstring for what is counted)."""
    texts: list[str] = [request.system or ""]
    for message in request.messages:
        texts.extend(_message_texts(message))
    for tool in request.tools:
        texts.extend((tool.name, tool.description, _json(tool.parameters)))
    if request.response_format is not None and request.response_format.json_schema:
        texts.append(_json(request.response_format.json_schema))
    framed = len(request.messages) + (1 if request.system else 0)
    return REPLY_PRIMING + PER_MESSAGE * framed + sum(counter.count(text) for text in texts)


def _message_texts(message: Message) -> list[str]:
    if isinstance(message.content, str):
        texts = [message.content]
    else:
        texts = [part.text or "" for part in message.content if part.type == "text"]
    for call in message.tool_calls:
        texts.extend((call.name, call.arguments))
    return texts


def _json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), default=str)
    except (RecursionError, ValueError, TypeError):  # absurdly nested or circular: count nothing rather than fail
        return ""
