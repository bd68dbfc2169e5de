"""Fake: a scripted TextProvider. Each call plays the next script: events in order, an exception where one is placed,
and ``HANG`` where the vendor goes silent for good (until the caller gives up). ``complete`` (the non-streamed call)
plays the script whole: the answer it adds up to, or its exception or silence with nothing delivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from domain.catalog import ModelSpec
from domain.chat import ChatRequest, Finish, ProviderEvent, TextDelta, Usage, UsageReport
from domain.completion import Completion, CompletionAssembler

__all__ = ["HANG", "Hang", "Script", "ScriptedTextProvider", "answer"]


class Hang:
    """A script item: the vendor sends nothing more and never ends (the caller's timeout or cancel must end it)."""


HANG = Hang()

Script = Sequence[ProviderEvent | BaseException | Hang]


def answer(*chunks: str, usage: Usage | None = None) -> list[ProviderEvent | BaseException | Hang]:
    """A successful script: text chunks, usage, ``Finish("stop")``."""
    return [*(TextDelta(c) for c in chunks), UsageReport(usage or Usage(3, len(chunks))), Finish("stop")]


class ScriptedTextProvider:
    """Plays ``scripts`` in order, one per call (the last one repeats); remembers every request and model it got.

    ``gate`` (when set) is awaited before the first event of each call, so a test can hold a stream open.
    """

    def __init__(self, *scripts: Script, name: str = "scripted") -> None:
        self._name = name
        self._scripts = [list(s) for s in scripts] or [answer("ok")]
        self.requests: list[ChatRequest] = []
        self.models: list[ModelSpec] = []
        self.modes: list[str] = []
        """Per call, ``stream`` or ``complete``: which call the service made."""
        self.closed = False
        self.gate: asyncio.Event | None = None
        self.hanging = 0
        """How many calls reached a ``HANG`` (went silent)."""

    @property
    def name(self) -> str:
        return self._name

    @property
    def calls(self) -> int:
        return len(self.requests)

    def stream(self, request: ChatRequest, model: ModelSpec) -> AsyncIterator[ProviderEvent]:
        return self._play(self._next(request, model, "stream"))

    async def complete(self, request: ChatRequest, model: ModelSpec, *, timeout_s: float | None = None) -> Completion:
        assembler = CompletionAssembler()
        async for event in self._play(self._next(request, model, "complete")):
            assembler.feed(event)
        return assembler.completion()

    def _next(self, request: ChatRequest, model: ModelSpec, mode: str) -> list[ProviderEvent | BaseException | Hang]:
        script = self._scripts[min(len(self.requests), len(self._scripts) - 1)]
        self.requests.append(request)
        self.models.append(model)
        self.modes.append(mode)
        return script

    async def _play(self, script: list[ProviderEvent | BaseException | Hang]) -> AsyncIterator[ProviderEvent]:
        if self.gate is not None:
            await self.gate.wait()
        for item in script:
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, Hang):
                self.hanging += 1
                await asyncio.get_running_loop().create_future()
                continue  # pragma: no cover - the future never completes
            yield item

    async def aclose(self) -> None:
        self.closed = True
