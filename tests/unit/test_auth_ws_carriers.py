"""How a WebSocket carries its token: the bearer subprotocol pair and the first auth message, parsed strictly."""

from __future__ import annotations

import json

import pytest

from domain.errors import AuthenticationError
from entrypoints.http.auth import _subprotocol_credentials, _token_from_message


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        ([], (None, None)),
        (["switchyard.v1"], (None, None)),
        (["bearer", "tok.en.x"], ("tok.en.x", "bearer")),
        (["Bearer", "tok.en.x"], ("tok.en.x", "Bearer")),
        (["switchyard.v1", "bearer", "tok.en.x"], ("tok.en.x", "switchyard.v1")),
        (["bearer", "tok.en.x", "switchyard.v1"], ("tok.en.x", "switchyard.v1")),
    ],
)
def test_subprotocol_pair_yields_token_and_the_protocol_to_echo(
    offered: list[str], expected: tuple[str | None, str | None]
) -> None:
    """The token follows `bearer`; the echo is the first other offered protocol, else `bearer` (never the token)."""
    assert _subprotocol_credentials(offered) == expected


@pytest.mark.parametrize("offered", [["bearer"], ["switchyard.v1", "bearer"], ["bearer", " "]])
def test_bearer_subprotocol_without_a_token_is_rejected(offered: list[str]) -> None:
    """`bearer` with nothing after it is an authentication error, not a silent fallback."""
    with pytest.raises(AuthenticationError):
        _subprotocol_credentials(offered)


@pytest.mark.parametrize(
    ("raw", "token"),
    [
        (json.dumps({"type": "auth", "token": "a.b.c"}), "a.b.c"),
        (json.dumps({"type": "auth", "token": " Bearer a.b.c "}), "a.b.c"),
        (json.dumps({"type": "auth", "token": "a.b.c"}).encode(), "a.b.c"),
    ],
)
def test_auth_message_yields_its_token(raw: str | bytes, token: str) -> None:
    """Text or binary, with or without a `Bearer ` prefix."""
    assert _token_from_message(raw, 1000) == token


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        json.dumps({"type": "chat", "token": "a.b.c"}),
        json.dumps({"type": "auth"}),
        json.dumps({"type": "auth", "token": 42}),
        json.dumps({"type": "auth", "token": "   "}),
        "[" * 100_000,
        json.dumps({"type": "auth", "token": "x" * 2000}),
        b"\xff\xfe",
    ],
)
def test_anything_else_is_an_authentication_error(raw: str | bytes) -> None:
    """Non-JSON, other types, missing/blank/non-string tokens, hostile nesting, oversize, bad UTF-8: all 4401."""
    with pytest.raises(AuthenticationError):
        _token_from_message(raw, 1000)
