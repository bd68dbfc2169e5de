"""Driven adapter: SQLAlchemy implementation of ``VideoJobStore`` (PostgreSQL in production, SQLite embedded).

Claiming is atomic on both backends, by different means:

- PostgreSQL: one transaction selects the due, unleased jobs ``FOR UPDATE SKIP LOCKED`` (concurrent claimers never
  wait for each other and never see the same rows) and leases them.
- SQLite: the single-process rule. SQLite is the embedded database of one serving process (the default of
  ``make run``), which has no row locks to skip. Each candidate is leased by a compare-and-set ``UPDATE ... WHERE``
  the lease is still free, and only the rows this ``UPDATE`` changed are claimed, so even two processes sharing
  one file never hold the same job; they just serialise on the database's write lock (a busy database fails the
  claim pass, and the worker tries again at its next tick).

Every lease is a fresh token (``<worker>#<claims>``), and every write of a holder names it: a worker whose lease
lapsed and was taken over changes nothing any more. A lease expires at ``lease_until`` (the workers' clocks: keep
``video.lease_s`` well above their skew). Request and operation state are JSON columns, written and read through
this boundary's own cattrs converter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

import attrs
import cattrs
from sqlalchemy import ColumnElement, RowMapping, and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sqlalchemy.tables import video_jobs
from domain.errors import DatabaseError, NotFoundError
from domain.types import CustomerId, StreamId
from domain.video import (
    ACTIVE_STATUSES,
    JobError,
    VideoJob,
    VideoJobId,
    VideoOperation,
    VideoRequest,
    VideoResult,
    content_path,
)

__all__ = ["SqlAlchemyVideoJobStore"]

_CONVERTER: Final = cattrs.Converter()
_C: Final = video_jobs.c


def _lease_free(now: datetime) -> ColumnElement[bool]:
    return or_(_C.lease_until.is_(None), _C.lease_until < now)


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(_C.status.in_(ACTIVE_STATUSES), _C.due_at <= now, _lease_free(now))


def _held(job_id: str, holder: str) -> ColumnElement[bool]:
    return and_(_C.id == job_id, _C.lease_owner == holder, _C.status.in_(ACTIVE_STATUSES))


def job_to_row(job: VideoJob) -> dict[str, Any]:
    """The row of ``job`` (the request without its first frame: that waits in the media store)."""
    error, result, operation = job.error, job.result, job.operation
    return {
        "id": job.id,
        "owner": job.owner,
        "model": job.model,
        "status": job.status,
        "progress": job.progress,
        "request": _CONVERTER.unstructure(attrs.evolve(job.request, first_frame=None)),
        "stream_id": job.stream_id,
        "served_by": job.served_by,
        "operation_name": operation.name if operation else None,
        "operation_state": dict(operation.state) if operation else None,
        "first_frame_media_id": job.first_frame_media_id,
        "error_code": error.code if error else None,
        "error_message": error.message if error else None,
        "error_retryable": error.retryable if error else None,
        "result_media_id": result.media_id if result else None,
        "result_duration_s": result.duration_s if result else None,
        "result_width": result.width if result else None,
        "result_height": result.height if result else None,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "due_at": job.due_at,
        "lease_owner": job.lease_owner,
        "lease_until": job.lease_until,
        "claims": job.claims,
        "api_key_id": job.api_key_id,
    }


def job_from_row(row: RowMapping) -> VideoJob:
    """The job a row holds."""
    operation = None
    if row["operation_name"] is not None:
        operation = VideoOperation(row["operation_name"], dict(row["operation_state"] or {}))
    error = None
    if row["error_code"] is not None:
        error = JobError(row["error_code"], row["error_message"] or "", bool(row["error_retryable"]))
    result = None
    if row["result_media_id"] is not None:
        result = VideoResult(
            row["result_media_id"],
            content_path(row["id"]),
            float(row["result_duration_s"] or 0.0),
            row["result_width"],
            row["result_height"],
        )
    return VideoJob(
        id=VideoJobId(row["id"]),
        owner=CustomerId(row["owner"]),
        model=row["model"],
        request=_CONVERTER.structure(row["request"], VideoRequest),
        stream_id=StreamId(row["stream_id"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        due_at=row["due_at"],
        status=row["status"],
        progress=row["progress"],
        served_by=row["served_by"],
        operation=operation,
        first_frame_media_id=row["first_frame_media_id"],
        error=error,
        result=result,
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        lease_owner=row["lease_owner"],
        lease_until=row["lease_until"],
        claims=int(row["claims"]),
        api_key_id=row["api_key_id"],
    )


class SqlAlchemyVideoJobStore:
    """The durable video jobs over an async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    async def create(self, job: VideoJob) -> None:
        """Store a new job."""
        async with self._begin("create_video_job") as connection:
            await connection.execute(video_jobs.insert().values(**job_to_row(job)))

    async def get(self, owner: CustomerId, job_id: str) -> VideoJob:
        """``owner``'s job (another customer's is ``NotFoundError``, like an unknown one)."""
        async with self._connect("get_video_job") as connection:
            row = (await connection.execute(select(video_jobs).where(_C.id == job_id, _C.owner == owner))).first()
        if row is None:
            raise NotFoundError("video job not found", context={"id": job_id})
        return job_from_row(row._mapping)

    async def page(self, owner: CustomerId, *, limit: int, offset: int) -> tuple[list[VideoJob], int]:
        """A page of ``owner``'s jobs, newest first, and their total."""
        query = (
            select(video_jobs)
            .where(_C.owner == owner)
            .order_by(_C.created_at.desc(), _C.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._connect("page_video_jobs") as connection:
            rows = (await connection.execute(query)).all()
            total = (await connection.execute(select(func.count()).where(_C.owner == owner))).scalar_one()
        return [job_from_row(row._mapping) for row in rows], int(total)

    async def claim_due(self, worker: str, *, now: datetime, lease_s: float, limit: int) -> list[VideoJob]:
        """Lease up to ``limit`` due jobs to ``worker`` (see the module docstring for how each backend is atomic)."""
        if limit <= 0:
            return []
        until = now + timedelta(seconds=lease_s)
        candidates = select(_C.id, _C.claims).where(_due(now)).order_by(_C.due_at).limit(limit)
        claimed: list[VideoJob] = []
        async with self._begin("claim_video_jobs") as connection:
            if self._postgres:
                candidates = candidates.with_for_update(skip_locked=True)
            for job_id, claims in (await connection.execute(candidates)).all():
                token = f"{worker}#{claims + 1}"
                # On PostgreSQL the row is locked already; on SQLite the WHERE is the compare-and-set.
                changed = await connection.execute(
                    update(video_jobs)
                    .where(_C.id == job_id, _due(now))
                    .values(lease_owner=token, lease_until=until, claims=claims + 1)
                    .returning(*video_jobs.c)
                )
                row = changed.first()
                if row is not None:
                    claimed.append(job_from_row(row._mapping))
        return claimed

    async def renew(
        self, job_id: str, holder: str, *, now: datetime, lease_s: float, progress: float | None, due_at: datetime
    ) -> VideoJob | None:
        """Extend ``holder``'s lease, recording progress and the next poll time."""
        values: dict[str, Any] = {"lease_until": now + timedelta(seconds=lease_s), "due_at": due_at, "updated_at": now}
        if progress is not None:
            values["progress"] = progress
        return await self._fenced("renew_video_job", job_id, holder, values)

    async def set_stream(self, job_id: str, holder: str, stream_id: StreamId) -> VideoJob | None:
        """Point the job at a new progress stream."""
        return await self._fenced("set_video_stream", job_id, holder, {"stream_id": stream_id})

    async def start(
        self, job_id: str, holder: str, *, operation: VideoOperation, served_by: str, now: datetime
    ) -> VideoJob | None:
        """The job is ``running`` with the vendor's ``operation``."""
        values = {
            "status": "running",
            "operation_name": operation.name,
            "operation_state": dict(operation.state),
            "served_by": served_by,
            "started_at": now,
            "updated_at": now,
            "progress": 0.0,
        }
        return await self._fenced("start_video_job", job_id, holder, values)

    async def complete(self, job_id: str, holder: str, *, result: VideoResult, now: datetime) -> VideoJob | None:
        """The job ``succeeded``; its lease ends."""
        values = {
            "status": "succeeded",
            "progress": 1.0,
            "result_media_id": result.media_id,
            "result_duration_s": result.duration_s,
            "result_width": result.width,
            "result_height": result.height,
            **self._ended(now),
        }
        return await self._fenced("complete_video_job", job_id, holder, values)

    async def fail(self, job_id: str, holder: str, *, error: JobError, now: datetime) -> VideoJob | None:
        """The job ``failed`` with ``error``; its lease ends."""
        values = {
            "status": "failed",
            "error_code": error.code,
            "error_message": error.message[:2000],
            "error_retryable": error.retryable,
            **self._ended(now),
        }
        return await self._fenced("fail_video_job", job_id, holder, values)

    async def release(self, job_id: str, holder: str) -> None:
        """Give ``holder``'s lease up, so another worker may claim the job at once."""
        await self._fenced("release_video_job", job_id, holder, {"lease_owner": None, "lease_until": None})

    async def cancel(self, owner: CustomerId, job_id: str, *, now: datetime) -> tuple[VideoJob, bool]:
        """Cancel ``owner``'s unfinished job whoever holds it; ``False`` when it had already ended."""
        values = {"status": "cancelled", **self._ended(now)}
        async with self._begin("cancel_video_job") as connection:
            changed = await connection.execute(
                update(video_jobs)
                .where(_C.id == job_id, _C.owner == owner, _C.status.in_(ACTIVE_STATUSES))
                .values(**values)
                .returning(*video_jobs.c)
            )
            row = changed.first()
        if row is not None:
            return job_from_row(row._mapping), True
        return await self.get(owner, job_id), False

    # --- internals ------------------------------------------------------------------------------------------------

    @staticmethod
    def _ended(now: datetime) -> dict[str, Any]:
        return {"finished_at": now, "updated_at": now, "lease_owner": None, "lease_until": None}

    async def _fenced(self, operation: str, job_id: str, holder: str, values: Mapping[str, Any]) -> VideoJob | None:
        async with self._begin(operation) as connection:
            changed = await connection.execute(
                update(video_jobs).where(_held(job_id, holder)).values(**values).returning(*video_jobs.c)
            )
            row = changed.first()
        return None if row is None else job_from_row(row._mapping)

    def _begin(self, operation: str) -> _Guarded:
        return _Guarded(self._engine, operation, write=True)

    def _connect(self, operation: str) -> _Guarded:
        return _Guarded(self._engine, operation, write=False)


class _Guarded:
    """A connection (in a transaction when writing) whose driver errors become ``DatabaseError(operation)``."""

    def __init__(self, engine: AsyncEngine, operation: str, *, write: bool) -> None:
        self._engine = engine
        self._operation = operation
        self._write = write
        self._context: Any = None

    async def __aenter__(self) -> AsyncConnection:
        self._context = self._engine.begin() if self._write else self._engine.connect()
        try:
            connection: AsyncConnection = await self._context.__aenter__()
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseError(self._operation, "the video job store did not answer") from exc
        return connection

    async def __aexit__(self, *exc_info: Any) -> bool:
        try:
            await self._context.__aexit__(*exc_info)
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseError(self._operation, "the video job store failed") from exc
        error = exc_info[1]
        if isinstance(error, SQLAlchemyError | OSError):
            raise DatabaseError(self._operation, "the video job store failed") from error
        return False
