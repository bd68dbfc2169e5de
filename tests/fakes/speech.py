"""Fake: a scripted ``SpeechProvider``: per call, the chunks to send and the error to raise (before or after them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from attrs import define, field

from domain.catalog import ModelSpec
from domain.errors import ServiceError
from domain.speech import AudioChunk, SpeechRequest, Voice

__all__ = ["ScriptedCall", "ScriptedSpeechProvider"]


@define
class ScriptedCall:
    """One call: ``chunks`` go out, then ``error`` is raised (``None``: the clip ends well)."""

    chunks: Sequence[bytes] = (b"chunk-1", b"chunk-2", b"chunk-3")
    error: ServiceError | None = None


@define
class ScriptedSpeechProvider:
    """Plays ``script`` one call after another (the last repeats); records each request it was handed and whether
    its stream was closed."""

    name: str = "alpha"
    script: list[ScriptedCall] = field(factory=lambda: [ScriptedCall()])
    voice_list: list[Voice] = field(factory=list)
    requests: list[SpeechRequest] = field(factory=list)
    closed: int = 0

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def voices(self, model: ModelSpec) -> list[Voice]:
        return list(self.voice_list)

    def synthesize(self, request: SpeechRequest, model: ModelSpec) -> AsyncIterator[AudioChunk]:
        call = self.script[min(self.calls, len(self.script) - 1)]
        self.requests.append(request)
        return self._play(call)

    async def _play(self, call: ScriptedCall) -> AsyncIterator[AudioChunk]:
        try:
            for chunk in call.chunks:
                yield chunk
            if call.error is not None:
                raise call.error
        finally:
            self.closed += 1
