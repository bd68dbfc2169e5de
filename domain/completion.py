"""Domain: a whole chat answer (``Completion``) and the one fold that builds it from normalized provider events.

A vendor called without streaming answers at once; ``TextProvider.complete`` returns that answer as a
``Completion``, in the same normalized terms as the events (usage in normalized counts, finish reason mapped, tool
calls ordered by index). ``CompletionAssembler`` is the fold from events to an answer, written once: the chat
service assembles a streamed attempt with it, and an adapter whose vendor forces streaming assembles its stream
into a ``Completion`` with it. ``Completion.events`` goes the other way, so a non-streamed answer can be checked
against the same transcripts as a streamed one.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import field, frozen

from domain.chat import (
    Finish,
    FinishReason,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)

__all__ = ["Completion", "CompletionAssembler"]


@frozen
class Completion:
    """One non-streamed attempt's answer. ``usage`` is ``None`` when the vendor reported none (billing then knows
    the figures are missing, as with a stream that never sent any)."""

    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"
    usage: Usage | None = None

    @classmethod
    def of(cls, events: Iterable[ProviderEvent]) -> Completion:
        """The answer a complete event stream adds up to."""
        assembler = CompletionAssembler()
        for event in events:
            assembler.feed(event)
        return assembler.completion()

    def events(self) -> list[ProviderEvent]:
        """The answer as the events a stream of it ends up as: reasoning, text, each call (start, arguments, end),
        usage, then the one ``Finish``."""
        out: list[ProviderEvent] = []
        if self.reasoning:
            out.append(ReasoningDelta(self.reasoning))
        if self.text:
            out.append(TextDelta(self.text))
        for index, call in enumerate(self.tool_calls):
            out += (ToolCallStart(index, call.id, call.name), ToolCallDelta(index, call.id, call.arguments))
            out.append(ToolCallEnd(index, call.id))
        if self.usage is not None:
            out.append(UsageReport(self.usage))
        out.append(Finish(self.finish_reason))
        return out


@frozen
class _PendingCall:
    id: str
    name: str
    arguments: list[str] = field(factory=list)


class CompletionAssembler:
    """Accumulates one attempt's events into text, reasoning, tool calls (by index), usage and finish reason.

    ``usage_reported`` says whether the vendor sent any usage: a cut attempt is billed on the vendor's figures when
    it did, on an estimate of what was delivered when it did not."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, _PendingCall] = {}
        self.usage = Usage()
        self.usage_reported = False
        self.finish_reason: FinishReason | None = None

    def feed(self, event: ProviderEvent) -> None:
        """Take one provider event into account."""
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            self._reasoning.append(event.text)
        elif isinstance(event, ToolCallStart):
            self._calls.setdefault(event.index, _PendingCall(event.id, event.name))
        elif isinstance(event, ToolCallDelta):
            self._calls.setdefault(event.index, _PendingCall(event.id, "")).arguments.append(event.arguments)
        elif isinstance(event, UsageReport):
            self.usage = self.usage + event.usage  # each report is an increment (adapters normalize)
            self.usage_reported = True
        elif isinstance(event, Finish):
            self.finish_reason = event.reason

    def take(self, completion: Completion) -> None:
        """Take a whole answer at once (a non-streamed attempt): the same state its events would have left."""
        self._text = [completion.text] if completion.text else []
        self._reasoning = [completion.reasoning] if completion.reasoning else []
        calls = completion.tool_calls
        self._calls = {index: _PendingCall(call.id, call.name, [call.arguments]) for index, call in enumerate(calls)}
        self.usage = completion.usage or Usage()
        self.usage_reported = completion.usage is not None
        self.finish_reason = completion.finish_reason

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    def tool_calls(self) -> list[ToolCall]:
        """Complete calls ordered by index; arguments default to ``{}``."""
        return [
            ToolCall(id=call.id, name=call.name, arguments="".join(call.arguments) or "{}")
            for _, call in sorted(self._calls.items())
        ]

    @property
    def final_reason(self) -> FinishReason:
        """The finish reason, ``tool_calls`` (or ``stop``) when the vendor gave none."""
        return self.finish_reason or ("tool_calls" if self._calls else "stop")

    def completion(self) -> Completion:
        """What has been assembled, as a ``Completion``."""
        usage = self.usage if self.usage_reported else None
        return Completion(self.text, self.reasoning, tuple(self.tool_calls()), self.final_reason, usage)
