"""/api/v1/videos through the real app and container (fake vendor, SQLite, the memory stream log, the file media
store): a 202 job, its progress stream to ``done`` (resumed after a drop), the MP4 by Range, cancel, pages, errors
naming the field, and another customer's job as a 404."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest
from quart import Quart
from quart.typing import TestClientProtocol

from adapters.fake import build_fake_providers
from adapters.fake.video import FakeVideoProvider
from container import Container
from entrypoints.http.app import create_app
from ports.providers import VendorProviders
from ports.video import VIDEO_PORT
from settings import Settings
from tests.support.app import auth_headers, make_container, make_settings

PATH = "/api/v1/videos"
QUICK = {"fake_finish_s": "0.4"}


def fake_vendor() -> dict[str, VendorProviders]:
    """The fake vendor, serving video whether or not its builder lists it yet."""
    fake = build_fake_providers()
    return {"fake": VendorProviders("fake", {**fake.providers, VIDEO_PORT: FakeVideoProvider(name="fake")})}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, video={"poll_interval_s": 0.05, "poll_max_interval_s": 0.1, "lease_s": 5.0})


@pytest.fixture
def container(settings: Settings) -> Container:
    return make_container(settings, vendors=fake_vendor())


@pytest.fixture
async def app(container: Container) -> AsyncIterator[Quart]:
    application = create_app(container)
    async with application.test_app():
        yield application
    container.unwire()


async def submit(client: TestClientProtocol, subject: str = "alice", **body: Any) -> tuple[int, dict[str, Any]]:
    payload = {"model": "fake/video", "prompt": "a paper boat on a river", "metadata": QUICK, **body}
    response = await client.post(PATH, json=payload, headers=auth_headers(subject))
    return response.status_code, await response.get_json()


def sse_events(raw: str) -> list[tuple[int, str, dict[str, Any]]]:
    """(seq, type, data) of every SSE frame with data."""
    events = []
    for frame in raw.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in fields:
            events.append((int(fields.get("id", "0")), fields.get("event", "message"), json.loads(fields["data"])))
    return events


async def events_after(client: TestClientProtocol, stream_id: str, after: int = 0) -> list[tuple[int, str, Any]]:
    headers = {**auth_headers(), "Last-Event-ID": str(after)} if after else auth_headers()
    response = await client.get(f"/api/v1/streams/{stream_id}/events", headers=headers)
    assert response.status_code == 200
    return sse_events(await response.get_data(as_text=True))


async def finished(client: TestClientProtocol, job_id: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            body = await (await client.get(f"{PATH}/{job_id}", headers=auth_headers())).get_json()
            if body["data"]["status"] not in ("queued", "running"):
                return dict(body["data"])
            await asyncio.sleep(0.05)


async def test_a_job_is_accepted_followed_to_done_and_its_mp4_served_by_range(client: TestClientProtocol) -> None:
    """202 with the queued job; its stream says queued, progress, done with the result; the content is a playable
    MP4 (whole and by range); the stream read again after a drop gives exactly the rest."""
    status, body = await submit(client, duration_s=2, aspect_ratio="16:9", resolution="144p")
    assert status == 202, body
    job = body["data"]
    assert (job["status"], job["model"], body["code"]) == ("queued", "fake/video", 202)
    assert job["events_url"] == f"/api/v1/streams/{job['stream_id']}/events"

    events = await events_after(client, job["stream_id"])
    assert (events[0][1], events[-1][1]) == ("queued", "done")
    assert {t for _, t, _ in events[1:-1]} == {"progress"}
    result = events[-1][2]["result"]
    assert result["url"] == f"{PATH}/{job['id']}/content"
    assert (result["duration_s"], result["width"], result["height"]) == (2.0, 256, 144)
    resumed = await events_after(client, job["stream_id"], after=events[0][0])
    assert resumed == events[1:]

    done = await finished(client, job["id"])
    assert (done["status"], done["progress"], done["result"]) == ("succeeded", 1.0, result)
    whole = await client.get(result["url"], headers=auth_headers())
    assert (whole.status_code, whole.headers["Content-Type"]) == (200, "video/mp4")
    data = await whole.get_data(as_text=False)
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 256, 144)
    part = await client.get(result["url"], headers={**auth_headers(), "Range": "bytes=10-109"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 10-109/{len(data)}"
    assert await part.get_data(as_text=False) == data[10:110]
    assert (await client.get(result["url"], headers=auth_headers("mallory"))).status_code == 404


async def test_another_customers_job_is_a_404_everywhere(client: TestClientProtocol) -> None:
    """Reading, cancelling or fetching someone else's job is the same 404 as an unknown id."""
    _, body = await submit(client)
    job_id = body["data"]["id"]
    for method, path in (("GET", ""), ("POST", "/cancel"), ("GET", "/content")):
        send = client.post if method == "POST" else client.get
        response = await send(f"{PATH}/{job_id}{path}", headers=auth_headers("mallory"))
        assert response.status_code == 404, path
        assert (await response.get_json())["data"]["error"] == "not_found"


async def test_cancel_ends_the_job_and_its_stream(client: TestClientProtocol) -> None:
    """Cancel answers the cancelled job; its stream ends cancelled; content is a 409; cancel again is the same."""
    _, body = await submit(client, metadata={"fake_finish_s": "30"})
    job = body["data"]
    response = await client.post(f"{PATH}/{job['id']}/cancel", headers=auth_headers())
    assert response.status_code == 200
    assert (await response.get_json())["data"]["status"] == "cancelled"
    events = await events_after(client, job["stream_id"])
    assert events[-1][1] == "cancelled"
    content = await client.get(f"{PATH}/{job['id']}/content", headers=auth_headers())
    assert content.status_code == 409
    again = await client.post(f"{PATH}/{job['id']}/cancel", headers=auth_headers())
    assert (await again.get_json())["data"]["status"] == "cancelled"


async def test_jobs_are_listed_newest_first_with_pagination(client: TestClientProtocol) -> None:
    """meta.pagination has the total of the caller's jobs only; limit and offset page them; bad values are 422s."""
    ids = [(await submit(client, metadata={"fake_finish_s": "30"}))[1]["data"]["id"] for _ in range(3)]
    await submit(client, "bob")
    response = await client.get(f"{PATH}?limit=2&offset=1", headers=auth_headers())
    body = await response.get_json()
    assert [job["id"] for job in body["data"]] == [ids[1], ids[0]]
    assert body["meta"]["pagination"] == {"total": 3, "limit": 2, "offset": 1}
    bad = await client.get(f"{PATH}?limit=0", headers=auth_headers())
    assert bad.status_code == 422
    assert (await bad.get_json())["data"]["errors"][0]["loc"] == "$.limit"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"duration_s": 3}, "duration_s"),
        ({"aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"prompt": ""}, "prompt"),
        ({"first_frame": {"b64_json": "not base64!", "mime_type": "image/png"}}, "first_frame.b64_json"),
        ({"durations": 4}, "durations"),
        ({"model": "fake/image"}, None),
    ],
)
async def test_bad_requests_are_422s_naming_the_field(
    client: TestClientProtocol, body: dict[str, Any], field: str
) -> None:
    """Values the model does not take, a misspelt field, bad base64 and a model that cannot film are 422s."""
    status, answer = await submit(client, **body)
    assert status == 422, answer
    if field is not None:
        assert field in json.dumps(answer["data"])


async def test_a_failing_operation_fails_the_job_with_a_typed_reason(client: TestClientProtocol) -> None:
    """The fake's operation error: the job ``failed`` with ``video_generation_failed``, its stream ends ``error``."""
    _, body = await submit(client, metadata={**QUICK, "fake_operation_error": "provider_error"})
    job = body["data"]
    events = await events_after(client, job["stream_id"])
    assert (events[-1][1], events[-1][2]["code"]) == ("error", "video_generation_failed")
    done = await finished(client, job["id"])
    assert done["status"] == "failed"
    assert done["error"] == {
        "code": "video_generation_failed",
        "message": "fake: the video generation failed",
        "retryable": False,
    }
