"""Driven adapter: joserfc implementation of ``StreamTickets``: a ticket is a compact HS256 JWT.

The signing key is derived (HMAC-SHA256 with a fixed label) from ``auth.stream_ticket_secret``, else from
``auth.jwt_secret``, else drawn at random per process. Derived, never the JWT secret itself: a ticket presented as a
bearer token fails the verifier's signature check, so it can never authorize anything but its one stream's events.
Tickets carry their own ``typ`` and a ``stream`` claim, and they look like any JWT (``eyJ...``), which the log
redaction already masks wherever one appears.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any, Final

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from domain.errors import AuthenticationError, ConfigurationError
from domain.tickets import StreamTicket
from domain.types import CustomerId, StreamId
from settings.secret import Secret

__all__ = ["TICKET_TYPE", "JoseStreamTickets"]

TICKET_TYPE: Final = "switchyard-stream-ticket"
_LABEL: Final = b"switchyard/stream-ticket/v1"
_ALGORITHM: Final = "HS256"
_MAX_TICKET_BYTES: Final = 2048
_LEEWAY_S: Final = 5  # clocks of several instances disagree a little; a ticket lives minutes


class JoseStreamTickets:
    """Issues tickets valid ``ttl_s`` seconds; ``secret`` None means a random key (one process only)."""

    def __init__(self, secret: Secret | None, ttl_s: float = 300.0) -> None:
        if not ttl_s > 0:
            raise ConfigurationError("SWITCHYARD_AUTH_STREAM_TICKET_TTL_S", f"must be positive, got {ttl_s}")
        material = secret.reveal().encode() if secret else secrets.token_bytes(32)
        self._key = OctKey.import_key(hmac.new(material, _LABEL, hashlib.sha256).digest())
        self._ttl_s = ttl_s
        self._claims = jwt.JWTClaimsRegistry(
            leeway=_LEEWAY_S, exp={"essential": True}, sub={"essential": True}, stream={"essential": True}
        )

    def issue(self, stream_id: StreamId, owner: CustomerId) -> StreamTicket:
        """A signed ticket for ``owner`` to read ``stream_id`` until now + ``ttl_s``."""
        now = time.time()
        expires_at = int(now + self._ttl_s)
        claims = {"sub": owner, "stream": stream_id, "iat": int(now), "exp": expires_at}
        ticket = jwt.encode({"alg": _ALGORITHM, "typ": TICKET_TYPE}, claims, self._key)
        return StreamTicket(ticket=ticket, stream_id=stream_id, owner=owner, expires_at=float(expires_at))

    def redeem(self, ticket: str, stream_id: StreamId) -> CustomerId:
        """The owner of a valid ticket for ``stream_id``; ``AuthenticationError`` otherwise (never says which check
        failed beyond expiry, so a probe learns nothing about other streams)."""
        if not ticket or len(ticket) > _MAX_TICKET_BYTES or ticket.count(".") != 2:
            raise AuthenticationError("malformed stream ticket")
        try:
            decoded = jwt.decode(ticket, self._key, algorithms=[_ALGORITHM])
        except JoseError:
            raise AuthenticationError("invalid stream ticket") from None
        except Exception:  # noqa: BLE001 - joserfc raises ValueError and friends for hostile input
            raise AuthenticationError("invalid stream ticket") from None
        if decoded.header.get("typ") != TICKET_TYPE:
            raise AuthenticationError("invalid stream ticket")
        claims: dict[str, Any] = dict(decoded.claims)
        try:
            self._claims.validate(claims)
        except JoseError as exc:
            expired = getattr(exc, "error", "") == "expired_token"
            raise AuthenticationError("stream ticket expired" if expired else "invalid stream ticket") from None
        owner = claims.get("sub")
        if claims.get("stream") != stream_id or not isinstance(owner, str) or not owner:
            raise AuthenticationError("invalid stream ticket")
        return CustomerId(owner)
