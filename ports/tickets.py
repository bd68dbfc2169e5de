"""Driven port: issue and redeem stream tickets (``?ticket=`` on ``GET /api/v1/streams/{id}/events``)."""

from __future__ import annotations

from typing import Protocol

from domain.tickets import StreamTicket
from domain.types import CustomerId, StreamId

__all__ = ["StreamTickets"]


class StreamTickets(Protocol):
    """Signs short-lived tickets that let their bearer read one stream, and checks them."""

    def issue(self, stream_id: StreamId, owner: CustomerId) -> StreamTicket:
        """A ticket for ``owner`` to read ``stream_id`` (the caller has checked that ``owner`` owns it)."""
        ...

    def redeem(self, ticket: str, stream_id: StreamId) -> CustomerId:
        """The owner a valid, unexpired ticket for ``stream_id`` was issued to; ``AuthenticationError`` for anything
        else (malformed, forged, expired, or issued for another stream)."""
        ...
