"""Fakes for voiced chat: a text vendor and a speech vendor driven step by step from the test.

``RemoteTextProvider`` yields what the test ``say``s until it ``finish``es or ``fail``s. ``RemoteSpeechProvider`` makes
one ``RemoteCall`` per ``synthesize``; the test sends each call's chunks, ends or fails it, in any order (segments
complete out of order), and sees whether the vendor stream was closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from attrs import define, field

from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Finish, ProviderEvent, TextDelta, Usage, UsageReport
from domain.completion import Completion
from domain.speech import AudioChunk, SpeechRequest, Voice

__all__ = ["RemoteCall", "RemoteSpeechProvider", "RemoteTextProvider"]


class RemoteTextProvider:
    """A text vendor whose every call streams what the test says (one call at a time)."""

    def __init__(self, name: str = "remote") -> None:
        self._name = name
        self._commands: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        self.calls = 0
        self.open = False

    @property
    def name(self) -> str:
        return self._name

    def say(self, text: str) -> None:
        self._commands.put_nowait(text)

    def finish(self) -> None:
        self._commands.put_nowait(None)

    def fail(self, error: BaseException) -> None:
        self._commands.put_nowait(error)

    def stream(self, request: ChatRequest, model: ModelSpec) -> AsyncIterator[ProviderEvent]:
        self.calls += 1
        return self._play()

    async def complete(self, request: ChatRequest, model: ModelSpec, *, timeout_s: float | None = None) -> Completion:
        """What the test says, whole (voiced chat streams; a plain ``stream: false`` chat may land here)."""
        return Completion.of([event async for event in self.stream(request, model)])

    async def _play(self) -> AsyncIterator[ProviderEvent]:
        self.open = True
        words = 0
        try:
            while True:
                item = await self._commands.get()
                if item is None:
                    yield UsageReport(Usage(3, words))
                    yield Finish("stop")
                    return
                if isinstance(item, BaseException):
                    raise item
                words += 1
                yield TextDelta(item)
        finally:
            self.open = False


@define
class RemoteCall:
    """One ``synthesize`` call, played as the test commands: ``chunk``, then ``end`` or ``fail``."""

    request: SpeechRequest
    commands: asyncio.Queue[bytes | BaseException | None] = field(factory=asyncio.Queue)
    sent: list[bytes] = field(factory=list)
    started: bool = False
    closed: bool = False
    over: bool = False
    """Told to end or fail (it may still be playing what it was told before)."""

    def chunk(self, data: bytes) -> None:
        self.commands.put_nowait(data)

    def end(self) -> None:
        self.over = True
        self.commands.put_nowait(None)

    def fail(self, error: BaseException) -> None:
        self.over = True
        self.commands.put_nowait(error)


@define
class RemoteSpeechProvider:
    """A speech vendor whose calls the test plays; ``open_calls`` are those whose stream is not closed yet."""

    name: str = "remote"
    calls: list[RemoteCall] = field(factory=list)
    most_at_once: int = 0

    @property
    def open_calls(self) -> list[RemoteCall]:
        return [call for call in self.calls if call.started and not call.closed]

    async def voices(self, model: ModelSpec) -> list[Voice]:
        return []

    def synthesize(self, request: SpeechRequest, model: ModelSpec) -> AsyncIterator[AudioChunk]:
        call = RemoteCall(request)
        self.calls.append(call)
        return self._play(call)

    async def _play(self, call: RemoteCall) -> AsyncIterator[AudioChunk]:
        call.started = True
        self.most_at_once = max(self.most_at_once, len(self.open_calls))
        try:
            while True:
                item = await call.commands.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                call.sent.append(item)
                yield item
        finally:
            call.closed = True
