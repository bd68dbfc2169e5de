"""Domain: a stream ticket, a short-lived capability to read one stream's events.

Browsers' ``EventSource`` cannot send an ``Authorization`` header, so a page trades its bearer token for a ticket
(``POST /api/v1/streams/{id}/ticket``) and puts it in the events URL (``?ticket=``). A ticket names one stream and its
owner and expires; it authorizes nothing else.
"""

from __future__ import annotations

from attrs import frozen

from domain.types import CustomerId, StreamId

__all__ = ["StreamTicket"]


@frozen
class StreamTicket:
    """An issued ticket: the opaque ``ticket`` string, what it opens, and when it stops opening it (Unix seconds)."""

    ticket: str
    stream_id: StreamId
    owner: CustomerId
    expires_at: float
