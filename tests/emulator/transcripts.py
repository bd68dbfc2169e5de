"""Test support: compare provider event streams across vendors (normalized transcripts and stream invariants).

Vendors chunk differently (OpenAI sends argument pieces, Gemini whole calls), so the cross-vendor comparison uses a
normalized transcript: consecutive text or reasoning deltas joined, each tool call as one entry (index, id, name,
parsed arguments) at the position it started, then usage and finish. ``assert_invariants`` checks what must hold of
the raw events from any vendor: deltas belong to a started call with the same id, every call ends, one ``Finish``
comes last, after any ``UsageReport``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from domain.chat import (
    Finish,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageReport,
)
from tests.emulator.scenario import Scenario

__all__ = ["assert_invariants", "event_dicts", "expected_transcript", "normalize"]


def event_dicts(events: Sequence[ProviderEvent]) -> list[dict[str, Any]]:
    """Raw events as JSON-able dicts (``type`` plus the fields), for golden files."""
    out: list[dict[str, Any]] = []
    for event in events:
        fields = attrs.asdict(event)
        out.append({"type": type(event).__name__, **fields})
    return out


def normalize(events: Sequence[ProviderEvent]) -> list[dict[str, Any]]:
    """The vendor-independent transcript of ``events``."""
    out: list[dict[str, Any]] = []
    calls: dict[int, dict[str, Any]] = {}
    for event in events:
        match event:
            case TextDelta(text=text) | ReasoningDelta(text=text):
                kind = "text" if isinstance(event, TextDelta) else "reasoning"
                if out and kind in out[-1]:
                    out[-1][kind] += text
                else:
                    out.append({kind: text})
            case ToolCallStart(index=index, id=call_id, name=name):
                calls[index] = {"index": index, "id": call_id, "name": name, "arguments": ""}
                out.append({"tool_call": calls[index]})
            case ToolCallDelta(index=index, arguments=arguments):
                calls[index]["arguments"] += arguments
            case UsageReport(usage=usage):
                out.append({"usage": attrs.asdict(usage)})
            case Finish(reason=reason):
                out.append({"finish": reason})
            case _:
                pass
    for call in calls.values():
        call["arguments"] = json.loads(call["arguments"] or "{}")
    return out


def expected_transcript(scenario: Scenario, *, reports_reasoning_tokens: bool = True) -> list[dict[str, Any]]:
    """What every exact adapter must produce for ``scenario`` (Anthropic reports no separate reasoning tokens)."""
    out: list[dict[str, Any]] = []
    if scenario.reasoning:
        out.append({"reasoning": scenario.reasoning})
    if scenario.text:
        out.append({"text": scenario.text})
    out += [
        {"tool_call": {"index": i, "id": c.id, "name": c.name, "arguments": json.loads(c.arguments)}}
        for i, c in enumerate(scenario.tool_calls)
    ]
    usage = attrs.asdict(scenario.usage)
    if not reports_reasoning_tokens:
        usage["reasoning_tokens"] = 0
    out.append({"usage": usage})
    out.append({"finish": scenario.finish_reason})
    return out


def assert_invariants(events: Sequence[ProviderEvent], *, complete: bool = True) -> None:
    """The ordering rules every TextProvider stream obeys (``complete=False``: a stream cut by an error)."""
    started: dict[int, str] = {}
    ended: set[int] = set()
    finishes = [i for i, e in enumerate(events) if isinstance(e, Finish)]
    usages = [i for i, e in enumerate(events) if isinstance(e, UsageReport)]
    for event in events:
        if isinstance(event, ToolCallStart):
            assert event.index == len(started), f"call indexes must count up from 0 in start order: {event}"
            assert event.id, f"a call needs an id: {event}"
            assert event.name, f"a call needs a name: {event}"
            started[event.index] = event.id
        elif isinstance(event, ToolCallDelta | ToolCallEnd):
            assert started.get(event.index) == event.id, f"{event} does not match a started call"
            assert event.index not in ended, f"{event} after the call ended"
            if isinstance(event, ToolCallEnd):
                ended.add(event.index)
    if not complete:
        assert not finishes, "a failed stream must not finish"
        return
    assert ended == set(started), f"calls never ended: {set(started) - ended}"
    assert finishes == [len(events) - 1], "exactly one Finish, and it comes last"
    assert len(usages) <= 1, "usage is reported once"
    last = events[-1]
    assert isinstance(last, Finish)
    assert (last.reason == "tool_calls") == bool(started) or last.reason in ("length", "content_filter")
