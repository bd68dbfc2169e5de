"""The TextProvider contract: one set of scenarios run against every adapter through its real SDK at the vendor
emulator (OpenAI Chat Completions and Responses, an OpenAI-compatible vendor by base URL, Anthropic, Gemini) and
against the ``fake`` provider, so the normalized events (and the domain errors of every fault) cannot drift apart.

The emulator renders the same ``Scenario`` in each vendor's wire format, so "exact" targets must reproduce the
scenario's transcript value for value. The fake is configured to play the nearest equivalent and is held to the
same shape (kinds of events, tool names, finish reason, error class and retryability).

Every scenario runs through both calls of the port (``via``): ``stream`` and ``complete``, the call made without
streaming, whose answer (as ``Completion.events()``) must be the same transcript and whose faults the same domain
errors, with nothing delivered before them.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
from attrs import field, frozen

from adapters.anthropic import build_anthropic_text_provider
from adapters.gemini import build_gemini_text_provider
from adapters.openai import build_openai_text_provider
from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Message, ProviderEvent, TextDelta, ToolSpec
from domain.completion import Completion
from domain.errors import (
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServiceError,
    ValidationError,
)
from ports.text import TextProvider as TextPort
from tests.emulator import SCENARIOS, EmulatorState, RunningEmulator
from tests.emulator.transcripts import assert_invariants, event_dicts, expected_transcript, normalize
from tests.emulator.wire import LEAKY_KEY


class TextProvider(TextPort, Protocol):
    """The port plus ``aclose``: these tests build adapters outside a vendor bundle, so they close them."""

    async def aclose(self) -> None: ...


try:  # the fake provider is built in parallel with this suite; run against it whenever it exists
    from adapters.fake import FakeTextProvider
except ImportError:  # pragma: no cover - only before adapters/fake exists
    FakeTextProvider = None  # type: ignore[assignment,misc]

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("SWITCHYARD_UPDATE_GOLDEN") == "1"
NORMAL_TIMEOUT_S = 10.0
STALL_TIMEOUT_S = 0.5  # the emulator stalls for 3 s, so the read timeout always fires first

Builder = Callable[..., TextProvider]


@frozen
class Target:
    """One adapter under contract: how to build it against the emulator and which model spec to hand it."""

    name: str
    provider: str
    builder: Builder | None = None
    base_url: Callable[[RunningEmulator], str] | None = None
    api: str | None = None
    exact: bool = True
    reports_reasoning_tokens: bool = True
    fake_params: dict[str, dict[str, Any]] = field(factory=dict)

    def build(self, emulator: RunningEmulator, *, timeout_s: float = NORMAL_TIMEOUT_S) -> TextProvider:
        if self.builder is None or self.base_url is None:
            assert FakeTextProvider is not None
            fake: TextProvider = FakeTextProvider(self.provider)
            return fake
        return self.builder(
            name=self.provider,
            api_key="sk-test-key",
            base_url=self.base_url(emulator),
            timeout_s=timeout_s,
            connect_timeout_s=2.0,
        )

    def model(self, scenario: str) -> ModelSpec:
        if self.exact:
            return ModelSpec(
                id=scenario, provider=self.provider, capabilities=frozenset({"text", "tools"}), api=self.api
            )
        params = self.fake_params[scenario]
        mode = str(params.get("fake_mode", "fixed"))
        return ModelSpec(id=mode, provider=self.provider, capabilities=frozenset({"text"}), default_params=params)

    def supports(self, scenario: str) -> bool:
        return self.exact or scenario in self.fake_params


_HELLO = {"fake_mode": "fixed", "fake_text": "Hello, world!"}
FAKE_PARAMS: dict[str, dict[str, Any]] = {
    "text": _HELLO,
    "length": {"fake_mode": "fixed", "fake_text": "Once upon a time, far away"},
    "reasoning": {"fake_mode": "reasoning"},
    "tools-single": {"fake_mode": "tools"},
    "tools-parallel": {"fake_mode": "tools"},
    "slow-trickle": {"fake_mode": "slow", "fake_delay_ms": 50},
    "fault-context-too-long": _HELLO | {"fake_error": "context_length"},
    "fault-401": _HELLO | {"fake_error": "auth"},
    "fault-429": _HELLO | {"fake_error": "rate_limited", "fake_retry_after": 0},
    "fault-500": _HELLO | {"fake_error": "overloaded"},
    "fault-overloaded": _HELLO | {"fake_error": "overloaded"},
    "fault-mid-stream": _HELLO | {"fake_error": "overloaded", "fake_fail_after": 1},
    "fault-stall": _HELLO | {"fake_error": "timeout", "fake_fail_after": 1},
}

TARGETS = [
    Target("openai_chat", "openai", build_openai_text_provider, lambda e: e.openai_base_url, api="chat"),
    Target("openai_responses", "openai", build_openai_text_provider, lambda e: e.openai_base_url, api="responses"),
    Target("groq_compatible", "groq", build_openai_text_provider, lambda e: e.openai_base_url),
    Target(
        "anthropic",
        "anthropic",
        build_anthropic_text_provider,
        lambda e: e.anthropic_base_url,
        reports_reasoning_tokens=False,  # Anthropic counts thinking inside output_tokens only
    ),
    Target("gemini", "gemini", build_gemini_text_provider, lambda e: e.gemini_base_url),
]
if FakeTextProvider is not None:
    TARGETS.append(Target("fake", "fake", exact=False, fake_params=FAKE_PARAMS))
EXACT_TARGETS = [t for t in TARGETS if t.exact]

SUCCESS_SCENARIOS = [
    "text",
    "length",
    "content-filter",
    "reasoning",
    "tools-single",
    "tools-parallel",
    "text-then-tool",
]
#: scenario -> (domain error class, retryable, text delivered before the error)
FAULTS: dict[str, tuple[type[ServiceError], bool, bool]] = {
    "fault-context-too-long": (ValidationError, False, False),
    "fault-401": (ProviderError, False, False),
    "fault-429": (RateLimitError, True, False),
    "fault-500": (ProviderError, True, False),
    "fault-overloaded": (ProviderError, True, False),
    "fault-mid-stream": (ProviderError, True, True),
    "fault-stall": (ProviderTimeoutError, True, True),
    "fault-malformed": (ProviderError, True, True),
    "fault-truncated": (ProviderError, True, True),
}
TOOLS = {
    "get_weather": ToolSpec("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {}}}),
    "get_time": ToolSpec("get_time", "Time in a zone", {"type": "object", "properties": {"tz": {}}}),
}


def _request(scenario: str) -> ChatRequest:
    wanted = SCENARIOS[scenario].tool_calls
    tools = [TOOLS[c.name] for c in wanted] if wanted else []
    max_tokens = 2 if scenario == "length" else None  # the fake truncates by words; the emulator ignores it
    return ChatRequest(
        model=scenario,
        messages=[Message("user", "What is the weather in Paris?")],
        system="Be brief.",
        tools=tools,
        max_tokens=max_tokens,
    )


@pytest.fixture(params=TARGETS, ids=lambda t: t.name)
def target(request: pytest.FixtureRequest) -> Target:
    """Each adapter under contract."""
    chosen: Target = request.param
    return chosen


@pytest.fixture
async def provider(target: Target, emulator: RunningEmulator) -> AsyncIterator[TextProvider]:
    """The target's provider, closed after the test."""
    built = target.build(emulator)
    yield built
    await built.aclose()


VIAS = ["stream", "complete"]
#: The emulator's request log name of each exact target's API.
_WIRE_API = {
    "openai_chat": "openai_chat",
    "openai_responses": "openai_responses",
    "groq_compatible": "openai_chat",
    "anthropic": "anthropic",
    "gemini": "gemini",
}


@pytest.fixture(params=VIAS)
def via(request: pytest.FixtureRequest) -> str:
    """Each call of the port: streamed, or whole (``complete``)."""
    chosen: str = request.param
    return chosen


async def _collect(provider: TextProvider, target: Target, scenario: str, via: str = "stream") -> list[ProviderEvent]:
    if via == "complete":
        completion = await provider.complete(_request(scenario), target.model(scenario))
        assert isinstance(completion, Completion)
        return completion.events()
    return [event async for event in provider.stream(_request(scenario), target.model(scenario))]


async def _collect_until_error(
    provider: TextProvider, target: Target, scenario: str, via: str = "stream"
) -> tuple[list[ProviderEvent], ServiceError]:
    events: list[ProviderEvent] = []

    async def drain() -> None:
        if via == "complete":
            events.extend((await provider.complete(_request(scenario), target.model(scenario))).events())
            return
        async for event in provider.stream(_request(scenario), target.model(scenario)):
            events.append(event)

    with pytest.raises(ServiceError) as caught:
        await drain()
    return events, caught.value


def _shape(transcript: list[dict[str, Any]]) -> list[Any]:
    """What the fake must share with the vendors: kinds, tool names and positions, finish reason."""
    shape: list[Any] = []
    for entry in transcript:
        if "tool_call" in entry:
            shape.append(("tool_call", entry["tool_call"]["index"], entry["tool_call"]["name"]))
        elif "finish" in entry:
            shape.append(("finish", entry["finish"]))
        else:
            shape.append(next(iter(entry)))
    return shape


def _assert_wire_call(emulator: RunningEmulator, target: Target, via: str) -> None:
    """The vendor saw the call ``via`` names: a stream, or one made without streaming."""
    if not target.exact:
        return
    sent = emulator.state.last(_WIRE_API[target.name])
    if target.name == "gemini":
        method = "streamGenerateContent" if via == "stream" else "generateContent"
        assert sent.path.endswith(f":{method}"), sent.path
    else:
        assert bool(sent.body.get("stream")) is (via == "stream"), sent.body


@pytest.mark.parametrize("scenario", SUCCESS_SCENARIOS)
async def test_scenario_gives_the_same_normalized_events(
    provider: TextProvider, target: Target, emulator: RunningEmulator, scenario: str, via: str
) -> None:
    """Every vendor turns the same scenario into the same normalized transcript, obeying the stream invariants,
    streamed or not."""
    if not target.supports(scenario):
        pytest.skip(f"{target.name} cannot play {scenario}")
    events = await _collect(provider, target, scenario, via)
    _assert_wire_call(emulator, target, via)
    assert_invariants(events)
    expected = expected_transcript(SCENARIOS[scenario], reports_reasoning_tokens=target.reports_reasoning_tokens)
    if target.exact:
        assert normalize(events) == expected
    else:
        assert _shape(normalize(events)) == _shape(expected)


@pytest.mark.parametrize("scenario", list(FAULTS))
async def test_fault_maps_to_the_same_domain_error(
    target: Target, emulator: RunningEmulator, scenario: str, via: str
) -> None:
    """A vendor fault becomes the same domain error class with the same retryability from every adapter, after the
    same content (none for status faults, the first chunk for mid-stream ones; none ever without streaming, where
    a mid-stream fault is the vendor's whole-response equivalent), and never a Finish."""
    if not target.supports(scenario):
        pytest.skip(f"{target.name} cannot play {scenario}")
    error_class, retryable, content_first = FAULTS[scenario]
    timeout_s = STALL_TIMEOUT_S if scenario == "fault-stall" else NORMAL_TIMEOUT_S
    provider = target.build(emulator, timeout_s=timeout_s)
    try:
        events, error = await _collect_until_error(provider, target, scenario, via)
    finally:
        await provider.aclose()
    assert type(error) is error_class, repr(error)
    assert error.retryable is retryable
    assert_invariants(events, complete=False)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    if not content_first or via == "complete":
        assert events == []
    elif target.exact:
        assert text == "Hello"
    else:
        assert text
    if isinstance(error, RateLimitError):
        assert error.retry_after == 0.0
    if isinstance(error, ProviderError):
        assert error.provider == target.provider


async def test_auth_failure_never_leaks_the_vendor_body(target: Target, emulator: RunningEmulator, via: str) -> None:
    """A 401 whose body quotes a key reaches the core without the key in its message, context or repr."""
    if not target.exact:
        pytest.skip("the fake has no vendor body")
    provider = target.build(emulator)
    try:
        _events, error = await _collect_until_error(provider, target, "fault-401", via)
    finally:
        await provider.aclose()
    assert LEAKY_KEY not in f"{error} {error!r} {error.context}"


async def test_context_too_long_carries_the_vendor_reason(target: Target, emulator: RunningEmulator, via: str) -> None:
    """A vendor 400 "context too long" becomes a 422-class ValidationError on ``messages`` with the reason."""
    if not target.exact:
        pytest.skip("the fake words its own reason")
    provider = target.build(emulator)
    try:
        _events, error = await _collect_until_error(provider, target, "fault-context-too-long", via)
    finally:
        await provider.aclose()
    assert isinstance(error, ValidationError)
    assert error.field == "messages"
    assert "prompt is too long" in error.reason


async def _drop_every_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")  # the request head, then the vendor hangs up before answering
    writer.close()


@pytest.mark.parametrize("fault", ["refused", "dropped"])
async def test_an_unreachable_vendor_is_a_retryable_provider_error(target: Target, fault: str, via: str) -> None:
    """A vendor that refuses the connection, or drops it before answering, is a retryable ``ProviderError`` saying
    it could not be reached (not a timeout), whichever transport the adapter's SDK client rides on."""
    if not target.exact:
        pytest.skip("the fake has no connection")
    server: asyncio.Server | None = None
    if fault == "refused":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]  # closed again: nothing listens there
    else:
        server = await asyncio.start_server(_drop_every_connection, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
    provider = target.build(RunningEmulator(port, EmulatorState()))
    try:
        _events, error = await _collect_until_error(provider, target, "text", via)
    finally:
        await provider.aclose()
        if server is not None:
            server.close()
    assert type(error) is ProviderError, repr(error)
    assert error.retryable
    assert "could not reach" in error.message


async def test_slow_trickle_arrives_incrementally(provider: TextProvider, target: Target) -> None:
    """Paced chunks reach the consumer as they are sent, not buffered until the end."""
    arrivals: list[float] = []
    events: list[ProviderEvent] = []
    started = time.monotonic()
    async for event in provider.stream(_request("slow-trickle"), target.model("slow-trickle")):
        arrivals.append(time.monotonic() - started)
        events.append(event)
    assert_invariants(events)
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert arrivals[-1] - arrivals[first_text] >= 0.1
    if target.exact:
        assert normalize(events) == expected_transcript(SCENARIOS["slow-trickle"])


async def test_consumer_may_stop_early_and_the_provider_stays_usable(provider: TextProvider, target: Target) -> None:
    """Closing a stream after its first event releases it; the next call on the same provider succeeds."""
    stream = provider.stream(_request("text"), target.model("text"))
    first = await anext(aiter(stream))
    assert isinstance(first, TextDelta)
    await stream.aclose()  # type: ignore[attr-defined]
    assert_invariants(await _collect(provider, target, "text"))


# --- tool-call golden transcripts -------------------------------------------------------------------------------

GOLDEN_SCENARIOS = ["tools-single", "tools-parallel", "text-then-tool"]


@pytest.mark.parametrize("scenario", GOLDEN_SCENARIOS)
async def test_tool_call_golden_transcript(emulator: RunningEmulator, scenario: str) -> None:
    """Tool calls match the golden file for every vendor: the normalized transcript (one for all) and each vendor's
    raw event sequence (every argument delta, on the right index and id, each call closed, finish ``tool_calls``)."""
    raw: dict[str, list[dict[str, Any]]] = {}
    normalized: list[dict[str, Any]] | None = None
    for target in EXACT_TARGETS:
        provider = target.build(emulator)
        try:
            events = await _collect(provider, target, scenario)
        finally:
            await provider.aclose()
        assert_invariants(events)
        raw[target.name] = event_dicts(events)
        if normalized is None:
            normalized = normalize(events)
        assert normalize(events) == normalized, target.name
    path = GOLDEN / f"{scenario}.json"
    current = {"scenario": scenario, "normalized": normalized, "raw": raw}
    if UPDATE_GOLDEN:
        path.write_text(json.dumps(current, indent=2) + "\n")
    golden = json.loads(path.read_text())
    assert golden["normalized"] == normalized
    for name, events_as_dicts in raw.items():
        assert golden["raw"][name] == events_as_dicts, name
