"""Two real servers on one PostgreSQL database share the video jobs: each job is worked on by one of them, and when
one server is killed (SIGKILL) the other finishes its jobs once their leases lapse. Every job succeeds once: one
outcome record per job, no video made twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.fake import build_fake_providers
from ports.video import VIDEO_PORT
from tests.support.app import auth_headers
from tests.support.server import running_server
from tests.support.services import require_service

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(
        VIDEO_PORT not in build_fake_providers().providers,
        reason="the fake vendor does not serve video yet (adapters/fake/vendor.py: VIDEO_PORT: FakeVideoProvider)",
    ),
]
JOBS = 6


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for the two servers (dropped afterwards)."""
    admin = require_service("postgres")
    name = f"test_videos_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE "{name}" WITH (FORCE)'))


def _jobs(client: httpx.Client, base_url: str) -> list[dict[str, Any]]:
    response = client.get(f"{base_url}/api/v1/videos?limit=100")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def _wait(client: httpx.Client, base_url: str, statuses: set[str], timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = _jobs(client, base_url)
        if len(jobs) == JOBS and all(job["status"] in statuses for job in jobs):
            return jobs
        assert time.monotonic() < deadline, [job["status"] for job in jobs]
        time.sleep(0.2)


def test_a_killed_servers_jobs_are_finished_by_the_other(tmp_path: Path) -> None:
    """Jobs spread over both servers; the first is killed mid-run; the second finishes every job exactly once."""
    with fresh_database() as database_url:
        env = {
            "SWITCHYARD_DATABASE_URL": database_url,
            "SWITCHYARD_MEDIA_DIR": str(tmp_path / "media"),
            "SWITCHYARD_VIDEO_POLL_INTERVAL_S": "0.2",
            "SWITCHYARD_VIDEO_POLL_MAX_INTERVAL_S": "0.5",
            "SWITCHYARD_VIDEO_LEASE_S": "2",
            "SWITCHYARD_VIDEO_WORKER_CONCURRENCY": str(JOBS // 2),  # neither can take every job alone
        }
        body = {"model": "fake/video", "prompt": "a paper boat", "duration_s": 1, "metadata": {"fake_finish_s": "4"}}
        with (
            httpx.Client(headers=auth_headers("alice"), timeout=10.0) as client,
            running_server(tmp_path, env) as first,
            running_server(tmp_path, env) as second,
        ):
            for _ in range(JOBS):
                response = client.post(f"{first.base_url}/api/v1/videos", json=body)
                assert response.status_code == 202, response.text
            _wait(client, first.base_url, {"running"}, 15.0)
            first.process.kill()
            first.process.wait()
            done = _wait(client, second.base_url, {"succeeded", "failed", "cancelled"}, 40.0)
            assert {job["status"] for job in done} == {"succeeded"}
            for job in done:
                content = client.get(second.base_url + job["result"]["url"])
                assert (content.status_code, content.content[4:8]) == (200, b"ftyp")
            assert _billed_seconds(client, second.base_url) == JOBS * 1.0  # each video billed once: none made twice


def _billed_seconds(client: httpx.Client, base_url: str) -> float:
    """The video seconds billed to the caller, once the ledger (which writes in batches) has them all."""
    deadline = time.monotonic() + 10.0
    seconds = 0.0
    while time.monotonic() < deadline:
        usage = client.get(f"{base_url}/api/v1/usage?group_by=model").json()["data"]
        seconds = float(sum(group["video_seconds"] for group in usage["totals"] if group["group"] == "fake/video"))
        if seconds >= JOBS:
            return seconds
        time.sleep(0.2)
    return seconds
