"""Driven adapter (OpenAI): what both Realtime API sessions (live transcription and realtime voice) share on the
SDK's ``AsyncRealtimeConnection``: reading the next server event, and the domain error an ``error`` event is.

A connection that closes under a running session (even cleanly: the session was not over) is the adapter kit's
retryable ``closed_error``; an ``error`` event goes through the vendor's one mid-stream ladder (``stream_error``),
except that a refusal naming the model is the client's (``ValidationError`` on ``model``) and any other invalid
event is ours (the session cannot go on), so a ``ProviderError``. ``fields`` lets a session name the client's field
behind a refused session parameter (``session.audio.output.voice`` is the client's ``voice``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import openai
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import RealtimeErrorEvent
from websockets.exceptions import ConnectionClosed

from adapters.kit.live import closed_error
from adapters.openai.errors import safe_reason, stream_error
from domain.errors import ProviderError, ServiceError, ValidationError

__all__ = ["event_error", "parsed", "receive", "receive_raw"]

#: Codes that refuse the model in the connection URL (an unknown or non-realtime model).
_MODEL_CODES: Final = frozenset(("invalid_model", "model_not_found"))


def event_error(provider: str, event: RealtimeErrorEvent, *, fields: Mapping[str, str] | None = None) -> ServiceError:
    """The domain error for an ``error`` server event."""
    error = event.error
    context = {"provider": provider, "vendor_code": error.code}
    if (error.param and "model" in error.param) or error.code in _MODEL_CODES:
        return ValidationError("model", safe_reason(error.message), context=context)
    for prefix, field in (fields or {}).items():
        if error.param and error.param.startswith(prefix):
            return ValidationError(field, safe_reason(error.message), context=context)
    mapped = stream_error(provider, error.code or error.type, error.message)
    if isinstance(mapped, ValidationError):
        # An invalid event is ours, not the client's: the session cannot go on.
        return ProviderError(provider, f"{provider} refused the live session: {mapped.reason}", context=mapped.context)
    return mapped


async def receive_raw(connection: AsyncRealtimeConnection, provider: str) -> bytes:
    """The next server message's bytes; a closed connection (even a clean close: the session was not over) is an
    error."""
    try:
        return await connection.recv_bytes()
    except ConnectionClosed as exc:
        raise closed_error(provider, exc) from exc
    except openai.OpenAIError as exc:
        raise ProviderError(provider, f"{provider} live session failed", original_error=exc) from exc


def parsed(connection: AsyncRealtimeConnection, provider: str, data: bytes) -> object:
    """A server message as the SDK's event type (a dict for a type it does not know)."""
    try:
        return connection.parse_event(data)
    except ValueError as exc:  # not JSON
        raise ProviderError(provider, f"{provider} sent a malformed event", original_error=exc, retryable=True) from exc


async def receive(connection: AsyncRealtimeConnection, provider: str) -> object:
    """The next server event, as the SDK's event type."""
    return parsed(connection, provider, await receive_raw(connection, provider))
