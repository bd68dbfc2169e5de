"""Test double (vendor emulator): the pieces every wire format shares (SSE frames, rendered streams, error replies)."""

from __future__ import annotations

import json
import math
from typing import Any

from attrs import field, frozen

__all__ = ["LEAKY_KEY", "ErrorReply", "Rendered", "retry_after_headers", "sse"]

#: A fake key the emulator echoes in its 401 bodies, as real vendors do; adapters must never pass it on.
LEAKY_KEY = "sk-emulator-secret-0123456789abcdef"

#: What a "malformed chunk" fault sends: an SSE frame whose data is not JSON.
MALFORMED_FRAME = b'data: {"choices": [{"delta": {"content": "unterminated\n\n'


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    """One server-sent event: optional ``event:`` line, one ``data:`` line, blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


@frozen
class Rendered:
    """A successful stream as frames; ``cut`` is the index just after the first content frame, where mid-stream
    faults (error event, stall, malformed chunk) are injected."""

    frames: list[bytes]
    cut: int


@frozen
class ErrorReply:
    """An HTTP error answer: status, JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(factory=dict)


def retry_after_headers(seconds: float, *, with_ms: bool) -> dict[str, str]:
    """``Retry-After`` in whole seconds (rounded up, as HTTP wants), plus OpenAI's ``retry-after-ms`` if asked."""
    headers = {"retry-after": str(math.ceil(seconds))}
    if with_ms:
        headers["retry-after-ms"] = str(round(seconds * 1000))
    return headers
