"""A video job survives its server: a real ``switchyard serve`` takes a job, is killed (SIGKILL) while the vendor is
still making the video, and a new server on the same database and media directory takes the job over once the dead
one's lease lapsed, finishes it, and ends the job's progress stream ``done``; the MP4 plays."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from adapters.fake import build_fake_providers
from ports.video import VIDEO_PORT
from tests.support.app import auth_headers
from tests.support.server import running_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        VIDEO_PORT not in build_fake_providers().providers,
        reason="the fake vendor does not serve video yet (adapters/fake/vendor.py: VIDEO_PORT: FakeVideoProvider)",
    ),
]


def _job(client: httpx.Client, base_url: str, job_id: str) -> dict[str, Any]:
    response = client.get(f"{base_url}/api/v1/videos/{job_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _wait_for(client: httpx.Client, base_url: str, job_id: str, statuses: set[str], timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = _job(client, base_url, job_id)
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout_s} s"
        time.sleep(0.1)


def _sse(client: httpx.Client, url: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    with client.stream("GET", url, timeout=30.0) as response:
        assert response.status_code == 200
        event_type = "message"
        for line in response.iter_lines():
            if line.startswith("event: "):
                event_type = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((event_type, json.loads(line.removeprefix("data: "))))
                if event_type in ("done", "error", "cancelled"):
                    break
    return events


def test_a_job_survives_a_killed_server_and_ends_done(tmp_path: Path) -> None:
    """Killed mid-run, restarted: the job is resumed from its stored operation and succeeds; its current stream
    ends ``done`` with the result; the content is a playable MP4 of the asked length."""
    env = {
        "SWITCHYARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'videos.db'}",
        "SWITCHYARD_MEDIA_DIR": str(tmp_path / "media"),
        "SWITCHYARD_VIDEO_POLL_INTERVAL_S": "0.2",
        "SWITCHYARD_VIDEO_POLL_MAX_INTERVAL_S": "0.5",
        "SWITCHYARD_VIDEO_LEASE_S": "2",
    }
    body = {
        "model": "fake-video",
        "prompt": "a paper boat on a river",
        "duration_s": 2,
        "metadata": {"fake_finish_s": "4"},
    }
    with httpx.Client(headers=auth_headers("alice"), timeout=10.0) as client:
        with running_server(tmp_path, env) as first:
            submitted = client.post(f"{first.base_url}/api/v1/videos", json=body)
            assert submitted.status_code == 202, submitted.text
            job_id = submitted.json()["data"]["id"]
            running = _wait_for(client, first.base_url, job_id, {"running"}, 10.0)
            assert running["progress"] is not None
            first.process.kill()  # no drain, no lease handed over: the next server must wait for it to lapse
            first.process.wait()
        with running_server(tmp_path, env) as second:
            done = _wait_for(client, second.base_url, job_id, {"succeeded", "failed", "cancelled"}, 30.0)
            assert done["status"] == "succeeded", done
            assert done["stream_id"] != running["stream_id"]  # the memory log died with the first server
            events = _sse(client, second.base_url + done["events_url"])
            assert events[0][1].get("resumed") is True
            assert events[-1][0] == "done"
            assert events[-1][1]["result"] == done["result"]
            content = client.get(second.base_url + done["result"]["url"])
            assert (content.status_code, content.headers["content-type"]) == (200, "video/mp4")
            with av.open(io.BytesIO(content.content), mode="r") as container:
                assert container.duration is not None
                assert abs(container.duration / 1_000_000 - 2.0) < 0.2
