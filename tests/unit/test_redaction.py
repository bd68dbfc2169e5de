"""Log redaction: each kind of secret is masked wherever it sits in an event; binary is summarised."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.structlog import redaction
from adapters.structlog.redaction import REDACTED, drop_websocket_noise, redact_event, redact_text, summarise_binary

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTl9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"


@pytest.mark.parametrize(
    ("secret", "text"),
    [
        ("sk-proj-abcdefghijklmnop1234", "calling openai with sk-proj-abcdefghijklmnop1234 now"),
        ("sk-ant-api03-abcdefghijklmnop", "key sk-ant-api03-abcdefghijklmnop rejected"),
        ("AIzaSyA1234567890abcdefghijklmnop", "gemini key AIzaSyA1234567890abcdefghijklmnop"),
        ("gsk_", "groq gsk-abcdefghijklmnopqrst"),
        (JWT, f"token was {JWT}"),
        ("opaque-token-value-1234", "Authorization: Bearer opaque-token-value-1234"),
        ("hunter2", "postgresql+asyncpg://switch:hunter2@db:5432/prod"),
        ("s3cr3tv4lue", "GET /x?api_key=s3cr3tv4lue&y=1"),
    ],
)
def test_secret_values_are_masked_in_messages(secret: str, text: str) -> None:
    """Pattern-based redaction inside free text."""
    event = redact_event(None, "info", {"event": text})
    assert secret.replace("gsk_", "gsk-abcdefghijklmnopqrst") not in event["event"]
    assert REDACTED in event["event"]


def test_secret_keys_are_masked_whatever_their_value() -> None:
    """Key-based redaction, nested in dicts and lists."""
    event: dict[str, Any] = {
        "event": "configured",
        "password": "plain",
        "headers": {"Authorization": "x", "accept": "json"},
        "items": [{"api_key": "k1"}, "safe"],
    }
    out = redact_event(None, "info", event)
    assert out["password"] == REDACTED
    assert out["headers"] == {"Authorization": REDACTED, "accept": "json"}
    assert out["items"] == [{"api_key": REDACTED}, "safe"]


def test_exceptions_in_events_are_redacted() -> None:
    """A vendor exception whose text carries a key is masked too."""
    out = redact_event(None, "error", {"event": "failed", "error": ValueError("bad key sk-abcdefghijklmnop99")})
    assert "sk-abcdefghijklmnop99" not in out["error"]


def test_binary_payloads_become_a_size_summary() -> None:
    """Audio chunks and bytes never reach the log."""
    out = summarise_binary(None, "debug", {"event": "chunk", "audio": b"\x00" * 4096, "nested": {"b": bytearray(3)}})
    assert out["audio"] == "<4096 bytes>"
    assert out["nested"] == {"b": "<3 bytes>"}


def test_websocket_close_noise_from_libraries_is_dropped_but_ours_is_kept() -> None:
    """Library 'connection closed' spam is dropped; our own events are not."""
    with pytest.raises(structlog.DropEvent):
        drop_websocket_noise(None, "info", {"event": "connection closed", "level": "info", "logger": "websockets"})
    kept = drop_websocket_noise(None, "info", {"event": "websocket closed", "level": "info", "logger": "switchyard"})
    assert kept["event"] == "websocket closed"
    warning = {"event": "connection closed unexpectedly", "level": "warning", "logger": "websockets"}
    assert drop_websocket_noise(None, "warning", warning) is warning


_NEAR_MISSES = st.sampled_from(
    [
        "eyJ",
        "eyJhbGciOi.abcdefgh.sig",
        "Bearer ",
        "BASIC ",
        "sk-",
        "pk-",
        "gsk-",
        "xai-",
        "pplx-",
        "sk-ant-",
        "AIza",
        "=",
        "key=",
        "token=",
        "://",
        "u:p@",
        "https://u:pw@h/",
        "-",
        ".",
        " ",
        "api_key",
        "abcdefghij0123456789",
    ]
)


def _full_pass(text: str) -> str:
    """redact_text without its shortcut: every pattern applied, as before the shortcut existed."""
    text = redaction._URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    for pattern in redaction._PATTERNS:
        if pattern.groups >= 2 and "=" in pattern.pattern:
            text = pattern.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
        elif pattern.pattern.startswith("(?i)\\b(bearer"):
            text = pattern.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_NEAR_MISSES, st.text(max_size=12)), max_size=12).map("".join))
def test_the_shortcut_for_plain_text_masks_exactly_what_every_pattern_would(text: str) -> None:
    """Text the quick check lets through unchanged is text no pattern matches: the result equals the full pass."""
    assert redact_text(text) == _full_pass(text)
