"""Driven ports: a vendor that makes videos through long-running operations, and the durable store of video jobs.

The provider is used in three steps, each a separate call that may happen in another process than the one before
(the operation is persisted between them): ``submit`` starts the vendor's operation, ``poll`` asks where it stands,
``fetch`` downloads the finished video.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol

from domain.catalog import ModelSpec
from domain.types import CustomerId, StreamId
from domain.video import GeneratedVideo, JobError, VideoJob, VideoOperation, VideoPoll, VideoRequest, VideoResult
from ports.providers import PortKey

__all__ = ["VIDEO_PORT", "VideoJobStore", "VideoProvider"]


class VideoProvider(Protocol):
    """One vendor's video generation. Each method is one attempt (retries belong to the caller) and raises domain
    errors, never a vendor exception: ``RateLimitError``, ``ProviderError`` (retryable or not), ``ValidationError``
    naming the field, ``ContentPolicyError``. ``poll`` raises ``VideoOperationError`` when the operation itself
    failed (final), anything else when only the question failed (ask again later)."""

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        ...

    async def submit(self, request: VideoRequest, model: ModelSpec) -> VideoOperation:
        """Start making the video; the operation can be polled from any process, after a restart too."""
        ...

    async def poll(self, operation: VideoOperation, model: ModelSpec) -> VideoPoll:
        """Where the operation stands."""
        ...

    async def fetch(self, operation: VideoOperation, model: ModelSpec) -> GeneratedVideo:
        """The finished video's bytes (only once ``poll`` said ``done``); a download cut short is a retryable
        ``ProviderError``."""
        ...


VIDEO_PORT: Final = PortKey[VideoProvider]("video")


class VideoJobStore(Protocol):
    """The jobs, durable across restarts. Writes by a worker are *fenced*: they name the lease they hold
    (``holder``, the job's ``lease_owner`` at claim) and change nothing (``None``) when that lease is no longer the
    job's, or the job has ended. Errors: ``NotFoundError`` for an unknown or other customer's job,
    ``DatabaseError`` when the backend fails."""

    async def create(self, job: VideoJob) -> None:
        """Store a new job."""
        ...

    async def get(self, owner: CustomerId, job_id: str) -> VideoJob:
        """``owner``'s job ``job_id``."""
        ...

    async def page(self, owner: CustomerId, *, limit: int, offset: int) -> tuple[list[VideoJob], int]:
        """A page of ``owner``'s jobs, newest first, and how many they have in all."""
        ...

    async def claim_due(self, worker: str, *, now: datetime, lease_s: float, limit: int) -> list[VideoJob]:
        """Atomically lease up to ``limit`` unfinished jobs that are due and unleased (or whose lease lapsed) to
        ``worker``: no two claimers ever get the same job while its lease runs. Each claimed job carries its new
        ``lease_owner`` token."""
        ...

    async def renew(
        self, job_id: str, holder: str, *, now: datetime, lease_s: float, progress: float | None, due_at: datetime
    ) -> VideoJob | None:
        """Extend the lease and record progress and the next poll time."""
        ...

    async def set_stream(self, job_id: str, holder: str, stream_id: StreamId) -> VideoJob | None:
        """Point the job at a new progress stream."""
        ...

    async def start(
        self, job_id: str, holder: str, *, operation: VideoOperation, served_by: str, now: datetime
    ) -> VideoJob | None:
        """The vendor accepted the submission: the job is ``running`` with ``operation``."""
        ...

    async def complete(self, job_id: str, holder: str, *, result: VideoResult, now: datetime) -> VideoJob | None:
        """The job ``succeeded`` with ``result``; the lease ends."""
        ...

    async def fail(self, job_id: str, holder: str, *, error: JobError, now: datetime) -> VideoJob | None:
        """The job ``failed`` with ``error``; the lease ends."""
        ...

    async def release(self, job_id: str, holder: str) -> None:
        """Give the lease up (a stopping worker), so another worker may claim the job at once."""
        ...

    async def cancel(self, owner: CustomerId, job_id: str, *, now: datetime) -> tuple[VideoJob, bool]:
        """Cancel ``owner``'s unfinished job whoever holds it (the holder's next fenced write sees it); returns the
        job and whether this call cancelled it (``False``: it had already ended)."""
        ...
