"""Test double (vendor emulator): scenarios as data, rendered identically in every vendor's wire format.

A ``Scenario`` says what the "model" answers (reasoning, text chunks, tool calls with their argument chunks, usage,
finish reason) and which fault to inject. The renderers in ``render_*`` turn the same scenario into OpenAI Chat
Completions, OpenAI Responses, Anthropic Messages and Gemini frames, so a contract test can demand the same
normalized events from every adapter.
"""

from __future__ import annotations

from typing import Literal

from attrs import field, frozen

__all__ = [
    "SCENARIOS",
    "Fault",
    "FaultKind",
    "Scenario",
    "ScriptedToolCall",
    "ScriptedUsage",
]

FaultKind = Literal[
    "context_too_long",  # 400 before any byte of the answer
    "unauthorized",  # 401
    "rate_limited",  # 429 with Retry-After
    "server_error",  # 500
    "overloaded",  # Anthropic 529 overloaded_error; 503 for the others
    "mid_stream_error",  # an error event after the first text chunk
    "stall",  # no bytes for ``stall_s`` after the first text chunk
    "malformed_chunk",  # a chunk that is not JSON after the first text chunk
    "truncated",  # the body ends cleanly after the first text chunk, without finish reason or terminator
]

#: Faults answered with an HTTP error status instead of a 200 stream.
STATUS_FAULTS: frozenset[str] = frozenset(
    ("context_too_long", "unauthorized", "rate_limited", "server_error", "overloaded")
)

CONTEXT_TOO_LONG_REASON = "prompt is too long: 210000 tokens > 200000 maximum context length"


@frozen
class ScriptedToolCall:
    """A tool call the model makes: the vendor call ``id``, the tool ``name`` and its JSON argument pieces."""

    id: str
    name: str
    argument_chunks: tuple[str, ...]

    @property
    def arguments(self) -> str:
        """The whole JSON argument text."""
        return "".join(self.argument_chunks)


@frozen
class ScriptedUsage:
    """Token counts in normalized terms: input includes cached tokens, output includes reasoning tokens."""

    input_tokens: int = 12
    output_tokens: int = 7
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@frozen
class Fault:
    """A scripted failure; ``retry_after_s`` is what a 429 advertises, ``stall_s`` how long a stall lasts."""

    kind: FaultKind
    retry_after_s: float = 0.0
    stall_s: float = 3.0

    @property
    def is_status(self) -> bool:
        """Answered with an HTTP error status (nothing streamed)."""
        return self.kind in STATUS_FAULTS


@frozen
class Scenario:
    """What the emulated model does for one request.

    ``interleave_tool_calls`` sends the argument pieces of parallel calls alternately where the wire format allows it
    (OpenAI Chat Completions and Responses); Anthropic sends content blocks one after another and Gemini sends each
    call whole, exactly as the real vendors do. ``chunk_delay_s`` paces every frame (a slow trickle).
    """

    text_chunks: tuple[str, ...] = ()
    reasoning_chunks: tuple[str, ...] = ()
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    interleave_tool_calls: bool = False
    finish: Literal["stop", "length", "content_filter"] = "stop"
    usage: ScriptedUsage = field(factory=ScriptedUsage)
    fault: Fault | None = None
    chunk_delay_s: float = 0.0
    #: Realtime voice: answer each appended audio chunk at once with audio of the same length (latency benchmarks).
    echo_audio: bool = False
    #: Gemini Live: say what the VAD hears with ``voiceActivity`` (only some live models do; OpenAI always does).
    voice_activity: bool = False

    @property
    def text(self) -> str:
        """The whole answer text."""
        return "".join(self.text_chunks)

    @property
    def reasoning(self) -> str:
        """The whole reasoning text."""
        return "".join(self.reasoning_chunks)

    @property
    def finish_reason(self) -> str:
        """The normalized finish reason: ``tool_calls`` when the turn ended in tool calls."""
        if self.tool_calls and self.finish == "stop":
            return "tool_calls"
        return self.finish


_HELLO = ("Hello", ", ", "world", "!")
_WEATHER = ScriptedToolCall("call_weather_1", "get_weather", ('{"ci', 'ty": "Pa', 'ris"}'))
_TIME = ScriptedToolCall("call_time_2", "get_time", ('{"tz": ', '"Europe/', 'Paris"}'))


def _faulty(kind: FaultKind, **kwargs: float) -> Scenario:
    return Scenario(text_chunks=_HELLO, fault=Fault(kind, **kwargs))


#: Built-in scenarios, chosen by the request's model name (or the ``x-emulator-scenario`` header).
SCENARIOS: dict[str, Scenario] = {
    "text": Scenario(text_chunks=_HELLO),
    "length": Scenario(text_chunks=("Once upon", " a time"), finish="length", usage=ScriptedUsage(12, 4)),
    "content-filter": Scenario(text_chunks=("I can",), finish="content_filter", usage=ScriptedUsage(12, 2)),
    "reasoning": Scenario(
        reasoning_chunks=("Think", "ing it ", "over."),
        text_chunks=("The answer", " is 42."),
        usage=ScriptedUsage(20, 30, cached_tokens=8, reasoning_tokens=16),
    ),
    "tools-single": Scenario(tool_calls=(_WEATHER,), usage=ScriptedUsage(40, 15)),
    "tools-parallel": Scenario(tool_calls=(_WEATHER, _TIME), interleave_tool_calls=True, usage=ScriptedUsage(40, 30)),
    "text-then-tool": Scenario(text_chunks=("Let me check",), tool_calls=(_WEATHER,), usage=ScriptedUsage(40, 20)),
    # realtime voice: the first answer calls the tool, the one after its result speaks the text
    "tool": Scenario(text_chunks=("It is sunny", " in Paris."), tool_calls=(_WEATHER,), usage=ScriptedUsage(40, 20)),
    "echo": Scenario(text_chunks=_HELLO, echo_audio=True),
    "server_vad": Scenario(text_chunks=_HELLO, voice_activity=True),  # the realtime contract's server-VAD turn
    "slow-trickle": Scenario(text_chunks=_HELLO, chunk_delay_s=0.05),
    # benchmarks: 40 tokens 5 ms apart, so inter-token overhead shows against a known pacing
    "bench-stream": Scenario(text_chunks=tuple(f"tok{i} " for i in range(40)), chunk_delay_s=0.005),
    "fault-context-too-long": _faulty("context_too_long"),
    "fault-401": _faulty("unauthorized"),
    "fault-429": _faulty("rate_limited"),
    "fault-500": _faulty("server_error"),
    "fault-overloaded": _faulty("overloaded"),
    "fault-mid-stream": _faulty("mid_stream_error"),
    "fault-stall": _faulty("stall"),
    "fault-malformed": _faulty("malformed_chunk"),
    "fault-truncated": _faulty("truncated"),
    "truncated": _faulty("truncated"),  # the realtime contract's name for it
}
