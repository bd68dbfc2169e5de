"""Stream tickets (the joserfc adapter): a ticket opens one stream for its owner until it expires, and is never a
bearer token (nor a bearer token a ticket)."""

from __future__ import annotations

import time

import pytest

from adapters.jose.minter import JoseTokenMinter
from adapters.jose.tickets import JoseStreamTickets
from adapters.jose.verifier import JoseTokenVerifier
from adapters.structlog.redaction import REDACTED, redact_text
from domain.errors import AuthenticationError, ConfigurationError
from domain.types import CustomerId, StreamId
from settings.model import AuthSettings
from tests.support.app import TEST_SECRET

ALICE = CustomerId("alice")
STREAM = StreamId("st_one")


def test_a_ticket_redeems_to_its_owner_for_its_stream() -> None:
    """issue then redeem: the owner comes back; the ticket expires ttl_s from now."""
    tickets = JoseStreamTickets(TEST_SECRET, ttl_s=120)
    issued = tickets.issue(STREAM, ALICE)
    assert (issued.stream_id, issued.owner) == (STREAM, ALICE)
    assert time.time() + 115 < issued.expires_at <= time.time() + 121
    assert tickets.redeem(issued.ticket, STREAM) == ALICE


def test_a_ticket_for_one_stream_does_not_open_another() -> None:
    """The `stream` claim must name the stream being read."""
    tickets = JoseStreamTickets(TEST_SECRET)
    with pytest.raises(AuthenticationError, match="invalid stream ticket"):
        tickets.redeem(tickets.issue(STREAM, ALICE).ticket, StreamId("st_other"))


def test_an_expired_ticket_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ticket issued ttl_s + leeway ago is refused as expired."""
    tickets = JoseStreamTickets(TEST_SECRET, ttl_s=60)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 120)
    old = tickets.issue(STREAM, ALICE)
    monkeypatch.setattr(time, "time", real)
    with pytest.raises(AuthenticationError, match="stream ticket expired"):
        tickets.redeem(old.ticket, STREAM)


@pytest.mark.parametrize("ticket", ["", "not-a-ticket", "a.b.c", "x" * 5000, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."])
def test_garbage_is_refused(ticket: str) -> None:
    """Malformed, oversized or unsigned input is an AuthenticationError, never a crash."""
    with pytest.raises(AuthenticationError):
        JoseStreamTickets(TEST_SECRET).redeem(ticket, STREAM)


def test_another_processes_random_key_does_not_verify() -> None:
    """Without any secret each instance draws its own key: its tickets open nothing elsewhere."""
    with pytest.raises(AuthenticationError):
        JoseStreamTickets(None).redeem(JoseStreamTickets(None).issue(STREAM, ALICE).ticket, STREAM)


async def test_a_ticket_is_not_a_bearer_token() -> None:
    """Keyed from the JWT secret yet signed with a derived key: the bearer verifier refuses the ticket."""
    ticket = JoseStreamTickets(TEST_SECRET).issue(STREAM, ALICE).ticket
    verifier = JoseTokenVerifier(AuthSettings(jwt_secret=TEST_SECRET), TEST_SECRET)
    with pytest.raises(AuthenticationError, match="signature"):
        await verifier.verify(ticket)


def test_a_bearer_token_is_not_a_ticket() -> None:
    """A JWT from the same secret (with a `stream` claim even) is refused as a ticket."""
    bearer = JoseTokenMinter(TEST_SECRET).mint("alice", extra={"stream": STREAM})
    with pytest.raises(AuthenticationError, match="invalid stream ticket"):
        JoseStreamTickets(TEST_SECRET).redeem(bearer, STREAM)


def test_a_non_positive_lifetime_fails_at_start() -> None:
    """auth.stream_ticket_ttl_s = 0 is a configuration error naming the variable."""
    with pytest.raises(ConfigurationError, match="SWITCHYARD_AUTH_STREAM_TICKET_TTL_S"):
        JoseStreamTickets(TEST_SECRET, ttl_s=0)


def test_tickets_are_masked_in_logged_text() -> None:
    """A ticket in a URL or a message is redacted (as a JWT, and as a `ticket=` query parameter of any shape)."""
    ticket = JoseStreamTickets(TEST_SECRET).issue(STREAM, ALICE).ticket
    for text in (f"GET /api/v1/streams/st_one/events?after=2&ticket={ticket}", f"redeeming {ticket}"):
        assert ticket not in redact_text(text)
        assert REDACTED in redact_text(text)
    assert redact_text("GET /x?ticket=opaque-123&after=1") == f"GET /x?ticket={REDACTED}&after=1"
