"""Entrypoint: ``switchyard chat --speech MODEL -o reply.mp3 "..."``, a voiced chat in-process (the same chat service,
streaming manager and voice as ``POST /api/v1/chat`` with ``speech``): the text is printed as it arrives, the audio
segments are appended to ``-o`` as they are voiced.

Segments are separate clips joined end to end, so ``-o`` takes the formats that join into one playable file: mp3 (the
voice drops the ID3 tag of every segment but the first), aac (ADTS), opus (chained Ogg) and raw pcm.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import attrs

from domain.chat import ChatRequest
from domain.errors import ServiceError, ValidationError
from domain.speech import SpeechOptions
from domain.types import CustomerId

__all__ = ["add_speech_arguments", "voiced_chat"]

_JOINABLE = ("mp3", "aac", "opus", "pcm")
_SUFFIXES = {".mp3": "mp3", ".aac": "aac", ".m4a": "aac", ".opus": "opus", ".ogg": "opus", ".pcm": "pcm", ".raw": "pcm"}


class _StreamFailed(ServiceError):
    """The stream ended with ``error`` (its code and message are the event's)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(str(payload.get("message", "the stream failed")))
        self.code = str(payload.get("code", "stream_error"))


def add_speech_arguments(chat: argparse.ArgumentParser) -> None:
    """The ``chat`` command's voiced options."""
    chat.add_argument("--speech", default=None, metavar="MODEL", help="speak the answer too, with this TTS model")
    chat.add_argument("--voice", default=None, help="a voice of the speech model (default: the model's)")
    chat.add_argument("-o", "--output", default=None, help="with --speech: the audio file to write (default reply.mp3)")
    chat.add_argument("--format", choices=_JOINABLE, default=None, help="with --speech: default from -o, else mp3")


def _audio_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    suffix = Path(args.output or "reply.mp3").suffix.lower()
    if suffix in (".wav", ".flac"):
        raise ValidationError("output", f"{suffix} clips cannot be joined into one file; use mp3, aac, opus or pcm")
    return _SUFFIXES.get(suffix, "mp3")


def voiced_chat(args: argparse.Namespace, request: ChatRequest) -> Callable[[Any], Awaitable[int]]:
    """What ``switchyard chat --speech`` runs with a container."""
    fmt = _audio_format(args)
    output = Path(args.output or "reply.mp3")
    speech = SpeechOptions(args.speech, args.voice, fmt)  # type: ignore[arg-type]  # one of _JOINABLE
    request = attrs.evolve(request, stream=True, speech=speech)

    async def talk(container: Any) -> int:
        from services.attempts import Caller

        service = await container.chat_service()
        caller = Caller(CustomerId(args.customer), f"cli-{secrets.token_hex(6)}")
        stream_id = await service.start_stream(request, caller)
        out: IO[bytes] | None = None
        written, ended = 0, False
        try:
            async for event in service.streams.subscribe(stream_id, owner=caller.customer_id):
                ended = event.terminal
                payload = dict(event.payload)
                if args.json:
                    size = {} if event.data is None else {"data_bytes": len(event.data)}
                    line = {"type": event.type, "seq": event.seq, "payload": payload, **size}
                    print(json.dumps(line), flush=True)
                elif event.type == "text":
                    print(payload["text"], end="", flush=True)
                if event.type == "audio" and event.data:
                    # Opened at the first audio: a refused or silent answer leaves no empty file behind.
                    out = out or output.open("wb")  # noqa: ASYNC230 - the CLI loop serves this one chat
                    out.write(event.data)
                    written += len(event.data)
                elif event.type == "speech_error":
                    print(f"\n[speech failed at segment {payload['segment']}: {payload['message']}]", file=sys.stderr)
                elif event.type == "error":
                    raise _StreamFailed(payload)
                elif event.type == "cancelled":
                    raise _StreamFailed({"code": "cancelled", "message": f"cancelled ({payload.get('reason')})"})
                elif event.type == "done" and not args.json:
                    _summary(payload, written, output)
        finally:
            if out is not None:
                out.close()
            if not ended:  # interrupted (Ctrl-C): stop paying for the text and the speech
                await service.streams.cancel(stream_id, owner=caller.customer_id)
        return 0

    return talk


def _summary(done: dict[str, Any], written: int, output: Path) -> None:
    speech = done.get("speech") or {}
    cost = f"${speech['cost_usd']:.6f}" if speech.get("cost_usd") is not None else "no price"
    first = f"{speech['ttfa_ms']:.0f} ms to first audio" if speech.get("ttfa_ms") is not None else "no audio"
    print(flush=True)
    print(
        f"[{done.get('model')} · {speech.get('model')} {speech.get('voice')} · {speech.get('segments')} segments · "
        f"{speech.get('characters')} characters · {cost} · {first} · {written:,} bytes] -> {output}",
        file=sys.stderr,
    )
