"""Domain: video generation as durable jobs. What a client asks for, the vendor's long-running operation, and the
job that outlives processes (its status, progress, result or typed error, its progress stream and its lease).

A job belongs to one customer (another customer's id is ``not_found``, as for media). Its status moves
``queued -> running -> succeeded | failed | cancelled`` and never leaves a terminal status. At most one worker holds
a job at a time: the holder's *lease* (``lease_owner``, a token unique to that claim, and ``lease_until``) fences
every write it makes, and a lease that ran out lets another worker take the job over.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Final, Literal, NewType

from attrs import define, field, frozen

from domain.errors import ProviderError, ServiceError
from domain.types import CustomerId, JsonValue, StreamId

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "FirstFrame",
    "GeneratedVideo",
    "JobError",
    "JobTimeoutError",
    "VideoJob",
    "VideoJobId",
    "VideoOperation",
    "VideoOperationError",
    "VideoPoll",
    "VideoRequest",
    "VideoResult",
    "VideoStatus",
    "content_path",
    "new_video_job_id",
]

VideoJobId = NewType("VideoJobId", str)
VideoStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
ACTIVE_STATUSES: Final[tuple[VideoStatus, ...]] = ("queued", "running")
TERMINAL_STATUSES: Final[frozenset[str]] = frozenset({"succeeded", "failed", "cancelled"})


def new_video_job_id() -> VideoJobId:
    """An unguessable job id (128 random bits, URL-safe)."""
    return VideoJobId("vid_" + secrets.token_urlsafe(16))


def content_path(job_id: str) -> str:
    """The API path serving a finished job's MP4 (``GET``, Range-capable)."""
    return f"/api/v1/videos/{job_id}/content"


class VideoOperationError(ProviderError):
    """The vendor's operation ended in failure (not the call that asked about it): final, never retried."""

    code = "video_generation_failed"


class JobTimeoutError(ServiceError):
    """A job outlived ``video.max_job_s`` and was ended (nothing stays ``running`` forever)."""

    code = "job_timeout"


@frozen
class FirstFrame:
    """The image the video starts from: its bytes and MIME type (PNG or JPEG)."""

    data: bytes
    mime_type: str


@frozen
class VideoRequest:
    """What to film. ``None`` leaves a choice to the model's default.

    ``duration_s`` in whole seconds, ``aspect_ratio`` as ``"16:9"``, ``resolution`` as ``"720p"``; ``audio`` turns a
    model's soundtrack on or off where it has one. ``fallbacks`` are models tried in order when the submission to this
    one fails. ``metadata`` reaches the provider (the fake's ``fake_*`` switches)."""

    model: str
    prompt: str
    first_frame: FirstFrame | None = None
    negative_prompt: str | None = None
    duration_s: int | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    seed: int | None = None
    audio: bool | None = None
    fallbacks: tuple[str, ...] = ()
    metadata: dict[str, str] = field(factory=dict)


@frozen
class VideoOperation:
    """A vendor's long-running operation: its name, and what the adapter needs to poll it again from any process."""

    name: str
    state: dict[str, JsonValue] = field(factory=dict)


@frozen
class VideoPoll:
    """Where an operation stands: ``done`` once the video can be fetched; ``progress`` in [0, 1] where known."""

    done: bool
    progress: float | None = None


@frozen
class GeneratedVideo:
    """The finished video as the vendor made it (decoded bytes) and what it is."""

    data: bytes
    mime_type: str
    duration_s: float
    width: int | None = None
    height: int | None = None


@frozen
class VideoResult:
    """A succeeded job's video: the media object holding it and what it is; ``url`` serves it (Range-capable)."""

    media_id: str
    url: str
    duration_s: float
    width: int | None
    height: int | None


@frozen
class JobError:
    """Why a job failed: a stable ``code`` (the error table's), a client-safe message, and whether resubmitting
    the same request may succeed."""

    code: str
    message: str
    retryable: bool = False


@define
class VideoJob:
    """One video generation job: its request, where it stands and who holds it."""

    id: VideoJobId
    owner: CustomerId
    model: str
    """The model asked for, ``provider/id``."""
    request: VideoRequest
    stream_id: StreamId
    """The job's current progress stream (a new one when the job resumed in another process)."""
    created_at: datetime
    updated_at: datetime
    due_at: datetime
    """When a worker should next look at the job (its next poll)."""
    status: VideoStatus = "queued"
    progress: float | None = None
    served_by: str | None = None
    """The model whose vendor accepted the submission (the requested one or a fallback)."""
    operation: VideoOperation | None = None
    first_frame_media_id: str | None = None
    """Where the first-frame image waits in the media store until the submission."""
    error: JobError | None = None
    result: VideoResult | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    claims: int = 0
    """How many times a worker claimed the job (1 for a job that ran in one go)."""
    api_key_id: str | None = None
    """The API key that submitted the job when the key has limits of its own: its video spend is counted for it."""

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES
