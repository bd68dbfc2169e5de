"""Two `switchyard serve` processes on one PostgreSQL database and one Redis (issue 18's "done when"): a key issued on
one is accepted by both and, once revoked on one, refused by both at once; a burst split across both against a daily
budget is cut at it with 429s carrying the headers, and the ledger's spend stays within the budget."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close
from websockets.sync.client import ClientConnection, connect

from tests.support.app import auth_headers
from tests.support.server import RunningServer, running_server
from tests.support.services import require_service

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
ADMIN = auth_headers("ops", scopes=("admin",))
BUDGET = 5.0
# $0.10 per output token, input free: "a b c d e" with max_tokens 5 reserves and costs exactly $0.50.
CATALOG = """
[[models]]
id = "pricey"
provider = "fake"
capabilities = ["text"]
input_price_per_mtok = 0.0
output_price_per_mtok = 100000.0
"""


async def _admin(sql: str) -> None:
    url = make_url(require_service("postgres"))
    connection = await asyncpg.connect(user=url.username, host=url.host, port=url.port, database=url.database)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A throw-away PostgreSQL database both servers share (as two instances of one deployment would)."""
    url = make_url(require_service("postgres"))
    name = f"e2e_tenancy_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[tuple[RunningServer, RunningServer]]:
    catalog = tmp_path_factory.mktemp("catalog") / "catalog.toml"
    catalog.write_text(CATALOG)
    env = {
        "SWITCHYARD_DATABASE_URL": database,
        "SWITCHYARD_REDIS_URL": require_service("redis"),
        "SWITCHYARD_QUOTAS_DAILY_BUDGET_USD": str(BUDGET),
        "SWITCHYARD_QUOTAS_REDIS_PREFIX": f"e2e:quota:{uuid.uuid4().hex}:",
        "SWITCHYARD_PROVIDERS_CATALOG_PATH": str(catalog),
        "SWITCHYARD_DATABASE_LEDGER_FLUSH_INTERVAL_S": "0.2",
    }
    with ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        servers = [running_server(tmp_path_factory.mktemp(name), env) for name in ("a", "b")]
        first, second = pool.map(stack.enter_context, servers)
        yield first, second


def test_a_key_revoked_on_one_server_is_refused_by_both_at_once(pair: tuple[RunningServer, RunningServer]) -> None:
    """Issued on A, used on A and B (each caches it), revoked on B: the very next request on A is a 401."""
    a, b = pair
    issued = httpx.post(f"{a.base_url}/api/v1/admin/keys", json={"customer_id": "acme", "name": "e2e"}, headers=ADMIN)
    assert issued.status_code == 201, issued.text
    data = issued.json()["data"]
    key = {"Authorization": f"Bearer {data['key']}"}
    for server in (a, b, a, b):
        assert httpx.get(f"{server.base_url}/api/v1/models", headers=key).status_code == 200
    revoked = httpx.delete(f"{b.base_url}/api/v1/admin/keys/{data['details']['id']}", headers=ADMIN)
    assert revoked.status_code == 200
    for server in (a, b):
        refused = httpx.get(f"{server.base_url}/api/v1/models", headers=key)
        assert refused.status_code == 401
        assert "revoked" in refused.json()["message"]


def test_a_socket_opened_with_a_key_on_one_server_closes_when_it_is_revoked_on_the_other(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    """A chat WebSocket opened on A with a key; the key revoked on B: A closes the socket with 4401 `API key revoked`
    within its re-check interval (2 s by default), without the client sending anything."""
    a, b = pair
    issued = httpx.post(f"{a.base_url}/api/v1/admin/keys", json={"customer_id": "acme", "name": "ws"}, headers=ADMIN)
    data = issued.json()["data"]
    url = a.base_url.replace("http://", "ws://") + "/api/v1/ws/chat"
    with connect(url, additional_headers={"Authorization": f"Bearer {data['key']}"}, open_timeout=5) as ws:
        revoked = httpx.delete(f"{b.base_url}/api/v1/admin/keys/{data['details']['id']}", headers=ADMIN)
        assert revoked.status_code == 200
        close = _close_of(ws)
    assert close is not None
    assert (close.code, close.reason) == (4401, "API key revoked")


def _close_of(ws: ClientConnection) -> Close | None:
    """Read (pings) until the server closes the socket; its close frame."""
    try:
        while True:
            ws.recv(timeout=15)
    except ConnectionClosed as closed:
        return closed.rcvd


def test_a_burst_across_both_servers_is_cut_at_the_budget(pair: tuple[RunningServer, RunningServer]) -> None:
    """30 concurrent $0.50 requests, alternating servers, against a $5 daily budget: at most 10 pass, the rest are 429
    `daily_budget_exceeded` with Retry-After and X-RateLimit-*. Under contention a call may be refused a little early
    (a finished call's cost is briefly both spent and held: never neither), so the calls still missing are then made
    one at a time, alternating servers: each passes and the next is refused. The ledger then holds $5, not more."""
    a, b = pair
    body = {"model": "fake/pricey", "max_tokens": 5, "messages": [{"role": "user", "content": "a b c d e"}]}
    headers = auth_headers("burst")

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(client.post(f"{(a, b)[i % 2].base_url}/api/v1/chat", json=body, headers=headers) for i in range(30))
            )

    responses = asyncio.run(fire())
    statuses = sorted(response.status_code for response in responses)
    admitted = statuses.count(200)
    assert 0 < admitted <= 10, statuses
    assert statuses == [200] * admitted + [429] * (30 - admitted), [
        r.text for r in responses if r.status_code not in (200, 429)
    ]
    late = [
        httpx.post(f"{(a, b)[i % 2].base_url}/api/v1/chat", json=body, headers=headers, timeout=30).status_code
        for i in range(10 - admitted + 1)
    ]
    assert late == [200] * (10 - admitted) + [429], f"after {admitted} admitted in the burst: {late}"
    refused = next(response for response in responses if response.status_code == 429)
    assert refused.json()["data"]["error"] == "daily_budget_exceeded"
    assert refused.headers["X-RateLimit-Limit"] == "5"
    assert float(refused.headers["X-RateLimit-Remaining"]) < 0.5
    assert int(refused.headers["Retry-After"]) > 0
    assert "X-RateLimit-Reset" in refused.headers
    # The admitted ones carry the headers too: what was left of the budget once each was reserved (the first $4.50;
    # the rest less, in steps of a call, whichever server answered: the counters are one Redis).
    passed = [response for response in responses if response.status_code == 200]
    left = [float(response.headers["X-RateLimit-Remaining"]) for response in passed]
    assert max(left) == 4.5
    assert all(0 <= amount <= 4.5 and (amount * 2).is_integer() for amount in left), left
    assert {response.headers["X-RateLimit-Limit"] for response in passed} == {"5"}
    assert {response.headers["X-RateLimit-Resource"] for response in passed} == {"daily_budget_usd"}
    deadline = time.monotonic() + 10
    while True:  # the ledger writes in batches off the request path
        totals = httpx.get(f"{b.base_url}/api/v1/usage?group_by=day", headers=headers).json()["data"]["totals"]
        spent = sum(total["cost_usd"] for total in totals)
        if spent >= BUDGET - 1e-9 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert spent == pytest.approx(BUDGET)
    assert sum(total["requests"] for total in totals) == 10


def test_the_log_says_nothing_went_wrong(pair: tuple[RunningServer, RunningServer]) -> None:
    """Neither server logged a crash while doing the above."""
    for server in pair:
        assert "request_crashed" not in server.log()
