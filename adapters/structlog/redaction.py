"""Driven adapter (structlog processors): redact secrets, summarise binary payloads, drop WebSocket close noise.

Redaction works on every string anywhere in an event (nested dicts, lists, exception text), so a secret that slips
into a message or a vendor error is still masked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

import structlog

__all__ = ["REDACTED", "drop_websocket_noise", "redact_event", "redact_exception", "redact_text", "summarise_binary"]

REDACTED: Final = "[REDACTED]"

_SECRET_KEYS: Final = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|authorization|cookie|credential|private[_-]?key|jwt|ticket)", re.I
)
_PATTERNS: Final = (
    # JWTs: three base64url segments, the first starting with {" encoded as eyJ.
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    # Bearer / Basic credentials in header-like text.
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    # Vendor keys: OpenAI/Anthropic/Groq/xAI style prefixes, Google API keys, ElevenLabs-like hex keys.
    re.compile(r"\b(sk|pk|rk|gsk|xai|pplx)-[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bsk-ant-[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"),
    # key=value pairs in query strings or messages.
    re.compile(r"(?i)\b(api[_-]?key|access_token|token|password|secret|key|ticket)=([^&\s\"']+)"),
)
_URL_CREDENTIALS: Final = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@", re.I)
# A literal every pattern above needs (eyJ, bearer/basic, a vendor prefix and its dash, AIza, "=", "://"): text
# without any of them cannot match, and most logged strings (ids, routes, timestamps) skip the seven passes.
_MAYBE_SECRET: Final = re.compile(r"eyJ|AIza|=|://|(?:sk|pk|rk|gsk|xai|pplx)-|(?i:bearer|basic)")
# Most values of an event: nothing to summarise or mask inside, and no ABC (Mapping) check needed to know it.
_PLAIN_SCALARS: Final = (int, float, type(None))
_PLAIN: Final = (str, *_PLAIN_SCALARS)
_SECRET_KEY_VERDICTS: dict[str, bool] = {}  # key name -> matches _SECRET_KEYS (an event reuses a handful of names)
_MAX_KEY_VERDICTS: Final = 4096
_WS_NOISE: Final = re.compile(r"(connection (is )?closed|websocket.*(closed|disconnect)|ConnectionClosed)", re.I)


def redact_text(text: str) -> str:
    """Mask every secret-looking substring of ``text``."""
    if _MAYBE_SECRET.search(text) is None:
        return text
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    for pattern in _PATTERNS:
        if pattern.groups >= 2 and "=" in pattern.pattern:
            text = pattern.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
        elif pattern.pattern.startswith("(?i)\\b(bearer"):
            text = pattern.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def _secret_key(key: str) -> bool:
    verdict = _SECRET_KEY_VERDICTS.get(key)
    if verdict is None:
        if len(_SECRET_KEY_VERDICTS) >= _MAX_KEY_VERDICTS:  # arbitrary keys (nested vendor payloads): stay bounded
            _SECRET_KEY_VERDICTS.clear()
        verdict = _SECRET_KEY_VERDICTS[key] = _SECRET_KEYS.search(key) is not None
    return verdict


def _redact_value(key: str | None, value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return value
    if key is not None and _secret_key(key) and value not in (None, "", False):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, _PLAIN_SCALARS):
        return value
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(None, v, depth + 1) for v in value)
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return value


def redact_event(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets by key name and by value pattern, everywhere in the event."""
    for key in list(event_dict):
        event_dict[key] = _redact_value(None if key == "event" else key, event_dict[key])
    return event_dict


def redact_exception(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in the ``exception`` text that ``format_exc_info`` adds after
    ``redact_event`` has seen every other field (so the formatter need not redact the whole event a second time)."""
    exception = event_dict.get("exception")
    if isinstance(exception, str):
        event_dict["exception"] = redact_text(exception)
    return event_dict


def summarise_binary(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace bytes (audio chunks, images) with a size summary, nested values included."""
    for key in list(event_dict):
        event_dict[key] = _summarise(event_dict[key])
    return event_dict


def _summarise(value: Any, depth: int = 0) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if depth < 8 and isinstance(value, Mapping):
        return {k: _summarise(v, depth + 1) for k, v in value.items()}
    if depth < 8 and isinstance(value, list | tuple):
        return type(value)(_summarise(v, depth + 1) for v in value)
    return value


def drop_websocket_noise(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: drop the flood of 'connection closed' messages libraries log for every WebSocket."""
    event = event_dict.get("event")
    if (
        isinstance(event, str)
        and event_dict.get("level", "info") in ("debug", "info")
        and event_dict.get("logger_name", event_dict.get("logger", "")) not in ("switchyard", "")
        and _WS_NOISE.search(event)
    ):
        raise structlog.DropEvent
    return event_dict
