"""Blueprint: video generation as durable jobs under ``/api/v1/videos``.

``POST`` answers 202 at once with the queued job; the job's progress is a stream (``GET
/api/v1/streams/{stream_id}/events``: ``queued``, ``progress``, then ``done`` with the result, ``error`` or
``cancelled``). A stream ends when the process producing it stops while the job goes on elsewhere; the job then has
a new ``stream_id`` (read the job again). ``GET .../{id}/content`` serves the MP4 from the media store exactly as
``GET /api/v1/media/{media_id}`` does (Range, ETag, HEAD), so a browser ``<video>`` can seek. Another customer's job
is a 404, like an unknown one.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Final

from attrs import field, frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response, current_app, request

from domain.errors import FieldError, RequestValidationError, ValidationError
from domain.video import FirstFrame, JobError, VideoJob, VideoRequest, VideoResult
from entrypoints.http.auth import current_auth
from entrypoints.http.envelope import Pagination, api_ok
from entrypoints.http.openapi import documented
from entrypoints.http.routes.media import media_bytes
from entrypoints.http.serialization import json_response, read_body
from ports.media import MediaStore
from services.video import VideoService

__all__ = ["FirstFrameBody", "VideoGenerationBody", "VideoJobView", "blueprint", "job_view", "video_request"]

blueprint = Blueprint("videos", __name__)
_ERRORS: Final = (400, 401, 404, 413, 415, 422, 503)
_MAX_PAGE: Final = 100


@frozen
class FirstFrameBody:
    """The image the video starts from: its bytes in base64 and its MIME type (PNG or JPEG)."""

    b64_json: str
    mime_type: str = "image/png"


@frozen
class VideoGenerationBody:
    """What to film. ``duration_s`` in seconds, ``aspect_ratio`` like ``"16:9"``, ``resolution`` like ``"720p"``
    (values the model does not take are a 422 listing the allowed ones); ``audio`` turns the soundtrack on or off
    where the model has one; ``fallbacks`` are models tried in order when the submission fails; ``metadata`` is
    passed to the provider (the fake's ``fake_*`` switches)."""

    model: str
    prompt: str
    first_frame: FirstFrameBody | None = None
    negative_prompt: str | None = None
    duration_s: int | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    seed: int | None = None
    audio: bool | None = None
    fallbacks: list[str] = field(factory=list)
    metadata: dict[str, str] = field(factory=dict)


@frozen
class VideoJobView:
    """A video job as the API shows it. ``progress`` is in [0, 1] where the vendor says; ``error`` is set once the
    job ``failed``, ``result`` once it ``succeeded`` (its ``url`` serves the MP4)."""

    id: str
    status: str
    model: str
    stream_id: str
    events_url: str
    progress: float | None
    served_by: str | None
    error: JobError | None
    result: VideoResult | None
    prompt: str
    duration_s: int | None
    aspect_ratio: str | None
    resolution: str | None
    seed: int | None
    audio: bool | None
    created_at: str
    started_at: str | None
    finished_at: str | None


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def job_view(job: VideoJob) -> VideoJobView:
    """The API's view of ``job``."""
    request_ = job.request
    return VideoJobView(
        id=job.id,
        status=job.status,
        model=job.model,
        stream_id=job.stream_id,
        events_url=f"/api/v1/streams/{job.stream_id}/events",
        progress=job.progress,
        served_by=job.served_by,
        error=job.error,
        result=job.result,
        prompt=request_.prompt,
        duration_s=request_.duration_s,
        aspect_ratio=request_.aspect_ratio,
        resolution=request_.resolution,
        seed=request_.seed,
        audio=request_.audio,
        created_at=_instant(job.created_at) or "",
        started_at=_instant(job.started_at),
        finished_at=_instant(job.finished_at),
    )


def _first_frame(body: FirstFrameBody) -> FirstFrame:
    try:
        data = base64.b64decode(body.b64_json, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("first_frame.b64_json", "is not valid base64") from None
    return FirstFrame(data, body.mime_type)


def video_request(body: VideoGenerationBody) -> VideoRequest:
    """The domain request for a structured body (the first frame decoded)."""
    return VideoRequest(
        model=body.model,
        prompt=body.prompt,
        first_frame=_first_frame(body.first_frame) if body.first_frame is not None else None,
        negative_prompt=body.negative_prompt,
        duration_s=body.duration_s,
        aspect_ratio=body.aspect_ratio,
        resolution=body.resolution,
        seed=body.seed,
        audio=body.audio,
        fallbacks=tuple(body.fallbacks),
        metadata=dict(body.metadata),
    )


def _max_body() -> int:
    limit: Any = current_app.config.get("MAX_CONTENT_LENGTH")
    return int(limit or 1024 * 1024)


def _page_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise RequestValidationError([FieldError(f"$.{name}", f"expected an integer from {low} to {high}")])
    return value


@blueprint.post("/api/v1/videos")
@inject
@documented(
    "Submit a video generation job; it runs in the background and survives restarts",
    request=VideoGenerationBody,
    response=VideoJobView,
    tags=["videos"],
    errors=_ERRORS,
    success=202,
    description=(
        "Answers 202 with the queued job: `{id, status: queued, stream_id, model, ...}`. Follow its progress on "
        "`GET /api/v1/streams/{stream_id}/events` (`queued`, `progress` with `progress` in [0, 1], then `done` "
        "with `result`, `error` or `cancelled`), or poll `GET /api/v1/videos/{id}`. When the stream ends while the "
        "job is still `queued` or `running` (the server holding it stopped), read the job again for its new "
        "`stream_id`. A model without the `video` capability, or a `duration_s`, `aspect_ratio` or `resolution` "
        "it does not take, is a 422 naming the field and the allowed values."
    ),
)
async def submit_video(service: VideoService = Provide["video_service"]) -> Response:
    body = await read_body(VideoGenerationBody, max_bytes=_max_body())
    job = await service.submit(video_request(body), current_auth().customer_id)
    return json_response(api_ok(job_view(job), message="accepted", code=202), status=202)


@blueprint.get("/api/v1/videos")
@inject
@documented(
    "Your video jobs, newest first",
    response=list[VideoJobView],
    tags=["videos"],
    errors=(401, 422, 503),
    description="`limit` (1-100, default 20) and `offset` page the list; `meta.pagination` has the total.",
)
async def list_videos(service: VideoService = Provide["video_service"]) -> Response:
    limit = _page_arg("limit", 20, 1, _MAX_PAGE)
    offset = _page_arg("offset", 0, 0, 1_000_000)
    jobs, total = await service.page(current_auth().customer_id, limit=limit, offset=offset)
    pagination = Pagination(total=total, limit=limit, offset=offset)
    return json_response(api_ok([job_view(job) for job in jobs], pagination=pagination))


@blueprint.get("/api/v1/videos/<job_id>")
@inject
@documented("A video job: status, progress, error or result", response=VideoJobView, tags=["videos"], errors=(401, 404))
async def get_video(job_id: str, service: VideoService = Provide["video_service"]) -> Response:
    job = await service.get(current_auth().customer_id, job_id)
    return json_response(api_ok(job_view(job)))


@blueprint.post("/api/v1/videos/<job_id>/cancel")
@inject
@documented(
    "Cancel a video job (a job that has already ended is answered as it is)",
    response=VideoJobView,
    tags=["videos"],
    errors=(401, 404, 503),
    description="The job ends `cancelled` at once, whichever server works on it; its stream ends `cancelled`.",
)
async def cancel_video(job_id: str, service: VideoService = Provide["video_service"]) -> Response:
    job = await service.cancel(current_auth().customer_id, job_id)
    return json_response(api_ok(job_view(job)))


@blueprint.get("/api/v1/videos/<job_id>/content")
@inject
@documented(
    "A finished video's MP4, with Range and conditional requests",
    tags=["videos"],
    errors=(401, 404, 409, 416),
    description=(
        "Served like `GET /api/v1/media/{media_id}`: `Range: bytes=a-b` answers 206 with Content-Range, ETag with "
        "`If-None-Match` answers 304, HEAD answers the headers alone. 409 while the job has not succeeded."
    ),
    headers=("Range", "If-None-Match", "If-Range"),
)
async def video_content(
    job_id: str, service: VideoService = Provide["video_service"], store: MediaStore = Provide["media_store"]
) -> Response:
    media_id = await service.content(current_auth().customer_id, job_id)
    response: Response = await media_bytes(media_id, store=store)
    return response
