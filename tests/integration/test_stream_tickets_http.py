"""Stream tickets over HTTP: the owner trades a bearer token for a ticket, `GET .../events?ticket=` reads (and resumes)
that stream with no header, and the ticket opens nothing else; the request log never holds it."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from quart import Quart
from quart.typing import TestClientProtocol

from entrypoints.http.app import create_app
from tests.support.app import auth_headers, make_container, make_settings
from tests.support.streams import add_test_routes


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Quart]:
    container = make_container(make_settings(tmp_path, logging={"level": "INFO", "format": "json"}))
    application = create_app(container)
    add_test_routes(application)
    async with application.test_app():
        yield application
    container.unwire()


async def _stream(client: TestClientProtocol, events: int = 3, subject: str = "alice") -> str:
    started = await client.post("/api/v1/streams/test", json={"events": events}, headers=auth_headers(subject))
    assert started.status_code == 200
    stream_id: str = (await started.get_json())["data"]["stream_id"]
    return stream_id


async def _ticket(client: TestClientProtocol, stream_id: str, subject: str = "alice") -> dict[str, str]:
    response = await client.post(f"/api/v1/streams/{stream_id}/ticket", headers=auth_headers(subject))
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    data: dict[str, str] = (await response.get_json())["data"]
    return data


def _seqs(body: str) -> list[int]:
    return [json.loads(line[6:])["seq"] for line in body.splitlines() if line.startswith("data: ")]


async def test_a_ticket_reads_and_resumes_the_stream_without_a_header(app: Quart) -> None:
    """`?ticket=` alone opens the events (as EventSource sends them); Last-Event-ID resumes after it."""
    client = app.test_client()
    stream_id = await _stream(client)
    data = await _ticket(client, stream_id)
    assert data["stream_id"] == stream_id
    assert data["events_url"] == f"/api/v1/streams/{stream_id}/events?ticket={data['ticket']}"
    whole = await client.get(data["events_url"])
    assert whole.status_code == 200
    assert _seqs(await whole.get_data(as_text=True)) == [1, 2, 3, 4, 5, 6]  # start, 3 texts, usage, done
    resumed = await client.get(data["events_url"], headers={"Last-Event-ID": "4"})
    assert _seqs(await resumed.get_data(as_text=True)) == [5, 6]


async def test_only_the_owner_gets_a_ticket(app: Quart) -> None:
    """Another customer's stream is a 404 (as an unknown one); no bearer token is a 401."""
    client = app.test_client()
    stream_id = await _stream(client)
    assert (await client.post(f"/api/v1/streams/{stream_id}/ticket", headers=auth_headers("bob"))).status_code == 404
    assert (await client.post("/api/v1/streams/st_nope/ticket", headers=auth_headers())).status_code == 404
    assert (await client.post(f"/api/v1/streams/{stream_id}/ticket")).status_code == 401


async def test_a_ticket_opens_nothing_else(app: Quart) -> None:
    """Not another stream's events, not the stream's status or cancel, not any API route as a bearer token."""
    client = app.test_client()
    mine, other = await _stream(client), await _stream(client)
    ticket = (await _ticket(client, mine))["ticket"]
    assert (await client.get(f"/api/v1/streams/{other}/events?ticket={ticket}")).status_code == 401
    assert (await client.get(f"/api/v1/streams/{mine}?ticket={ticket}")).status_code == 401
    assert (await client.post(f"/api/v1/streams/{mine}/cancel?ticket={ticket}")).status_code == 401
    bearer = {"Authorization": f"Bearer {ticket}"}
    assert (await client.get("/api/v1/models", headers=bearer)).status_code == 401
    assert (await client.get(f"/api/v1/streams/{mine}/events", headers=bearer)).status_code == 401
    refused = await client.get(f"/api/v1/streams/{mine}/events?ticket=garbage")
    assert refused.status_code == 401
    assert (await refused.get_json())["data"]["error"] == "authentication_error"


async def test_the_request_log_never_holds_the_ticket(app: Quart, caplog: pytest.LogCaptureFixture) -> None:
    """The events request is logged by path (route, status, customer), never with its query string."""
    client = app.test_client()
    stream_id = await _stream(client)
    ticket = (await _ticket(client, stream_id))["ticket"]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await (await client.get(f"/api/v1/streams/{stream_id}/events?ticket={ticket}")).get_data()
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "_switchyard", False)]
    rendered = [handler.format(record) for record in caplog.records]
    request_lines = [json.loads(line) for line in rendered if '"http_request"' in line]
    assert [line["path"] for line in request_lines] == [f"/api/v1/streams/{stream_id}/events"]
    assert request_lines[0]["customer_id"] == "alice"
    assert all(ticket not in line for line in rendered)
