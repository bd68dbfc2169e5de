"""Driven-adapter kit: the failures of a vendor's live (WebSocket) session, as domain errors.

Both live speech-to-text SDKs (OpenAI Realtime, ElevenLabs realtime Scribe) connect with ``websockets``, so they fail
alike: a handshake refused with an HTTP status (``InvalidStatus``, whose body is the vendor's JSON error), a host
that cannot be reached or does not speak WebSocket, and a connection that closes under a running session (a close
frame with an error code, or none at all: 1006). Which domain error a status becomes is the kit's one ladder
(``status_error``); a connection lost mid-session is a retryable ``ProviderError`` (it may be tried again as a new
session, which only the client can decide once transcripts went out).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from adapters.kit.errors import generic_failure, retry_after_seconds, status_error
from domain.errors import ProviderError, ServiceError

__all__ = ["HANDSHAKE_FAILURES", "closed_error", "handshake_error"]

#: What connecting may raise besides the vendor SDK's own errors.
HANDSHAKE_FAILURES: Final[tuple[type[BaseException], ...]] = (InvalidHandshake, InvalidURI, OSError, TimeoutError)


def _body_message(body: bytes) -> object:
    """The vendor's words in a refused handshake's JSON body (OpenAI ``error.message``, ElevenLabs ``detail``)."""
    try:
        parsed: Any = json.loads(body or b"null")
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, Mapping):
        return None
    inner = parsed.get("error", parsed.get("detail"))
    if isinstance(inner, Mapping):
        return inner.get("message")
    return inner if isinstance(inner, str) else None


def handshake_error(provider: str, exc: BaseException, *, field: str = "model") -> ServiceError:
    """The domain error for a failed connect: the refused handshake's status through the kit's ladder (a 400 names
    ``field``), else an unreachable vendor (retryable) or a timeout."""
    if isinstance(exc, InvalidStatus):
        response = exc.response
        headers = {key.lower(): value for key, value in response.headers.raw_items()}
        status = response.status_code
        return status_error(
            provider,
            status,
            exc,
            message=_body_message(bytes(response.body or b"")),
            field=field,
            retry_after=retry_after_seconds(headers) if status == 429 else None,
        )
    return generic_failure(provider, exc, timeouts=(TimeoutError,), unreachable=HANDSHAKE_FAILURES)


def closed_error(provider: str, exc: ConnectionClosed | None = None) -> ProviderError:
    """A session whose connection closed before it was over (retryable: a new session may well work)."""
    code = exc.rcvd.code if exc is not None and exc.rcvd is not None else 1006
    return ProviderError(
        provider,
        f"{provider} closed the live session before it ended (WebSocket close {code})",
        original_error=exc,
        retryable=True,
        context={"close_code": code},
    )
