"""Blueprint: stream tickets, for browsers' ``EventSource``, which cannot send an ``Authorization`` header.

``POST /api/v1/streams/{id}/ticket`` (bearer, the stream's owner) answers ``data.ticket``: a short-lived token
(``auth.stream_ticket_ttl_s``) that ``GET /api/v1/streams/{id}/events?ticket=...`` accepts instead of the header, so
``new EventSource(url)`` follows the stream and resumes it with its own ``Last-Event-ID``. The ticket opens that one
stream's events and nothing else; it is checked when a connection opens (an open stream is not cut at expiry). Request
logs carry the path, never the query, and the log redaction masks a ticket wherever one appears.
"""

from __future__ import annotations

from urllib.parse import quote

import structlog
from attrs import frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response, g, request

from domain.auth import AuthContext
from domain.types import CustomerId, StreamId
from entrypoints.http.auth import TICKET_PARAM, current_auth
from entrypoints.http.envelope import api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import json_response
from ports.tickets import StreamTickets
from services.streaming.manager import StreamingManager

__all__ = ["TicketView", "blueprint", "stream_reader"]

blueprint = Blueprint("stream_tickets", __name__)


@frozen
class TicketView:
    """A ticket, the stream it opens, when it expires (Unix seconds), and the events URL with it filled in."""

    ticket: str
    stream_id: str
    expires_at: float
    events_url: str


@blueprint.post("/api/v1/streams/<stream_id>/ticket")
@inject
@documented(
    "A short-lived ticket to read one stream's events as ?ticket= (for EventSource, which cannot send headers)",
    response=TicketView,
    tags=["streams"],
    errors=(401, 404),
)
async def stream_ticket(
    stream_id: str,
    manager: StreamingManager = Provide["streaming_manager"],
    tickets: StreamTickets = Provide["stream_tickets"],
) -> Response:
    owner = current_auth().customer_id
    await manager.describe(StreamId(stream_id), owner=owner)  # someone else's or an unknown stream: 404, no ticket
    issued = tickets.issue(StreamId(stream_id), owner)
    events_url = f"/api/v1/streams/{quote(stream_id, safe='')}/events?{TICKET_PARAM}={issued.ticket}"
    view = TicketView(issued.ticket, issued.stream_id, issued.expires_at, events_url)
    return json_response(api_ok(view), headers={"Cache-Control": "no-store"})


@inject
def stream_reader(stream_id: StreamId, tickets: StreamTickets = Provide["stream_tickets"]) -> CustomerId:
    """Who reads ``stream_id``'s events in this request: the owner a ``?ticket=`` was issued to (``AuthenticationError``
    when it is not a valid ticket for this stream), else the bearer token's customer."""
    ticket = request.args.get(TICKET_PARAM)
    if ticket is None:
        return current_auth().customer_id
    owner = tickets.redeem(ticket, stream_id)
    g.auth = AuthContext(owner)  # for this request's log line; the hook let nothing else through on a ticket
    structlog.contextvars.bind_contextvars(customer_id=owner)
    return owner
