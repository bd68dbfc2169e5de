"""Fakes: an in-memory ``VideoJobStore`` (as strict as the SQL one: the same contract suite runs on both), and a
scripted ``VideoProvider`` whose operations finish when a test says so."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import attrs

from domain.catalog import ModelSpec
from domain.errors import NotFoundError, ServiceError
from domain.types import CustomerId, StreamId
from domain.video import (
    ACTIVE_STATUSES,
    GeneratedVideo,
    JobError,
    VideoJob,
    VideoOperation,
    VideoPoll,
    VideoRequest,
    VideoResult,
)

__all__ = ["InMemoryVideoJobStore", "ScriptedVideoProvider"]


class InMemoryVideoJobStore:
    """Jobs in a dict; claims and fenced writes follow the same rules as ``SqlAlchemyVideoJobStore``."""

    def __init__(self) -> None:
        self.jobs: dict[str, VideoJob] = {}

    async def create(self, job: VideoJob) -> None:
        self.jobs[job.id] = attrs.evolve(job, request=attrs.evolve(job.request, first_frame=None))

    async def get(self, owner: CustomerId, job_id: str) -> VideoJob:
        job = self.jobs.get(job_id)
        if job is None or job.owner != owner:
            raise NotFoundError("video job not found", context={"id": job_id})
        return job

    async def page(self, owner: CustomerId, *, limit: int, offset: int) -> tuple[list[VideoJob], int]:
        mine = sorted((j for j in self.jobs.values() if j.owner == owner), key=lambda j: (j.created_at, j.id))
        mine.reverse()
        return mine[offset : offset + limit], len(mine)

    async def claim_due(self, worker: str, *, now: datetime, lease_s: float, limit: int) -> list[VideoJob]:
        due = [
            job
            for job in self.jobs.values()
            if job.status in ACTIVE_STATUSES
            and job.due_at <= now
            and (job.lease_until is None or job.lease_until < now)
        ]
        claimed = []
        for job in sorted(due, key=lambda j: j.due_at)[: max(0, limit)]:
            leased = attrs.evolve(
                job,
                lease_owner=f"{worker}#{job.claims + 1}",
                lease_until=now + timedelta(seconds=lease_s),
                claims=job.claims + 1,
            )
            self.jobs[job.id] = leased
            claimed.append(leased)
        return claimed

    def _held(self, job_id: str, holder: str) -> VideoJob | None:
        job = self.jobs.get(job_id)
        if job is None or job.lease_owner != holder or job.status not in ACTIVE_STATUSES:
            return None
        return job

    def _write(self, job_id: str, holder: str, **changes: Any) -> VideoJob | None:
        job = self._held(job_id, holder)
        if job is None:
            return None
        changed = attrs.evolve(job, **changes)
        self.jobs[job_id] = changed
        return changed

    async def renew(
        self, job_id: str, holder: str, *, now: datetime, lease_s: float, progress: float | None, due_at: datetime
    ) -> VideoJob | None:
        job = self._held(job_id, holder)
        return self._write(
            job_id,
            holder,
            lease_until=now + timedelta(seconds=lease_s),
            due_at=due_at,
            updated_at=now,
            progress=progress if progress is not None else (job.progress if job else None),
        )

    async def set_stream(self, job_id: str, holder: str, stream_id: StreamId) -> VideoJob | None:
        return self._write(job_id, holder, stream_id=stream_id)

    async def start(
        self, job_id: str, holder: str, *, operation: VideoOperation, served_by: str, now: datetime
    ) -> VideoJob | None:
        return self._write(
            job_id,
            holder,
            status="running",
            operation=operation,
            served_by=served_by,
            started_at=now,
            updated_at=now,
            progress=0.0,
        )

    async def complete(self, job_id: str, holder: str, *, result: VideoResult, now: datetime) -> VideoJob | None:
        return self._write(job_id, holder, status="succeeded", progress=1.0, result=result, **_ended(now))

    async def fail(self, job_id: str, holder: str, *, error: JobError, now: datetime) -> VideoJob | None:
        return self._write(job_id, holder, status="failed", error=error, **_ended(now))

    async def release(self, job_id: str, holder: str) -> None:
        self._write(job_id, holder, lease_owner=None, lease_until=None)

    async def cancel(self, owner: CustomerId, job_id: str, *, now: datetime) -> tuple[VideoJob, bool]:
        job = await self.get(owner, job_id)
        if job.status not in ACTIVE_STATUSES:
            return job, False
        cancelled = attrs.evolve(job, status="cancelled", **_ended(now))
        self.jobs[job_id] = cancelled
        return cancelled, True


def _ended(now: datetime) -> dict[str, Any]:
    return {"finished_at": now, "updated_at": now, "lease_owner": None, "lease_until": None}


class ScriptedVideoProvider:
    """Operations done after ``done_after`` polls (``None``: never), or failing with ``failures[name]`` once polled;
    ``submit_errors``, ``poll_errors`` and ``fetch_errors`` are raised, in order, by the next calls."""

    def __init__(
        self, *, name: str = "scripted", data: bytes = b"\x00\x00\x00\x18ftypmp42", done_after: int | None = 2
    ) -> None:
        self._name = name
        self._data = data
        self.done_after = done_after
        self.submitted: list[VideoRequest] = []
        self.failures: dict[str, ServiceError] = {}
        self.poll_errors: list[ServiceError] = []
        self.fetch_errors: list[ServiceError] = []
        self.submit_errors: list[ServiceError] = []
        self.polls = 0
        self.fetches = 0

    @property
    def name(self) -> str:
        return self._name

    async def submit(self, request: VideoRequest, model: ModelSpec) -> VideoOperation:
        if self.submit_errors:
            raise self.submit_errors.pop(0)
        self.submitted.append(request)
        return VideoOperation(f"ops/{len(self.submitted)}", {"model": model.qualified_id})

    async def poll(self, operation: VideoOperation, model: ModelSpec) -> VideoPoll:
        self.polls += 1
        if self.poll_errors:
            raise self.poll_errors.pop(0)
        failure = self.failures.get(operation.name)
        if failure is not None:
            raise failure
        if self.done_after is not None and self.polls >= self.done_after:
            return VideoPoll(True, 1.0)
        return VideoPoll(False, round(min(0.9, 0.25 * self.polls), 3))

    async def fetch(self, operation: VideoOperation, model: ModelSpec) -> GeneratedVideo:
        self.fetches += 1
        if self.fetch_errors:
            raise self.fetch_errors.pop(0)
        return GeneratedVideo(self._data, "video/mp4", 8.0, 1280, 720)
