"""Use case: the video worker, a loop in every serving process that takes durable video jobs to their end.

Each tick it claims due jobs from the store (a lease per job: one worker at a time, across processes and instances)
up to ``video.worker_concurrency`` and runs each in its own task (``services/video_run.py``: the stream, the
submission through the attempt runner, the polls with backoff, the download into the media store, the job's bounded
life and its one usage record). A job submitted in this process wakes the loop at once. At shutdown the worker stops
its tasks at their next pause and gives their leases up, so another process (or this one after its restart) resumes
them at once from the operation stored in the job; a killed process's leases lapse after ``lease_s`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Final

from domain.errors import ServiceError
from ports.media import MediaStore
from ports.video import VideoJobStore
from services.attempts import AttemptRunner
from services.video import JobAccounts, VideoConfig
from services.video_run import JobRunner, Running
from services.video_streams import JobStreams

__all__ = ["VideoWorker", "video_worker_resource"]

_log = logging.getLogger("switchyard.video")
_STOP_GRACE_S: Final = 5.0
"""How long ``stop`` waits for job tasks to reach a pause (a vendor call in flight ends first) before cutting them."""


class VideoWorker:
    """Claims due video jobs and runs them; ``start``/``stop`` are its lifetime (a container resource)."""

    def __init__(
        self,
        runner: AttemptRunner,
        jobs: VideoJobStore,
        streams: JobStreams,
        media: MediaStore,
        accounts: JobAccounts,
        config: VideoConfig,
        *,
        worker_id: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._jobs = jobs
        self._streams = streams
        self._config = config
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self._now = now
        self._steps = JobRunner(runner, jobs, streams, media, accounts, config, now)
        self._running: dict[str, Running] = {}
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def active(self) -> int:
        """Jobs this worker works on now."""
        return len(self._running)

    def start(self) -> None:
        """Start the claim loop (a no-op with ``worker_concurrency = 0``: this process only serves the API)."""
        if self._config.worker_concurrency > 0 and self._loop is None:
            self._loop = asyncio.create_task(self._claim_forever(), name=f"video-worker:{self.worker_id}")

    async def stop(self) -> None:
        """Stop claiming and stop every job task, which gives its lease up (another worker resumes it at once).
        Tasks stop at their next pause; one still in a vendor call after ``_STOP_GRACE_S`` is cut."""
        self._stopping = True
        self._streams.wakeup.set()
        for running in self._running.values():
            running.stop()
        tasks = [running.task for running in self._running.values() if running.task is not None]
        if self._loop is not None:
            tasks.append(self._loop)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=_STOP_GRACE_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def tick(self) -> int:
        """One claim pass: lease as many due jobs as there is room for and start them; how many were claimed."""
        room = self._config.worker_concurrency - len(self._running)
        if room <= 0 or self._stopping:
            return 0
        claimed = await self._jobs.claim_due(self.worker_id, now=self._now(), lease_s=self._config.lease_s, limit=room)
        for job in claimed:
            assert job.lease_owner is not None
            running = self._running.get(job.id)
            if running is not None:  # still ours: the claim renewed the lease under a new token
                running.holder = job.lease_owner
                continue
            running = Running(job, job.lease_owner)
            self._running[job.id] = running
            running.task = asyncio.create_task(self._run(running), name=f"video-job:{job.id}")
            self._streams.working(job.id, running.interrupt)
        return len(claimed)

    async def _claim_forever(self) -> None:
        interval = self._config.poll_interval_s
        while not self._stopping:
            try:
                await self.tick()
            except ServiceError as exc:  # the database is down: the next tick tries again
                _log.warning("video_claim_failed", extra={"error": exc.code})
            except Exception:  # noqa: BLE001 - the loop must outlive any one failure; it is logged
                _log.exception("video_claim_failed")
            wakeup = self._streams.wakeup
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await wakeup.wait()
            wakeup.clear()

    async def _run(self, running: Running) -> None:
        try:
            await self._steps.run(running)
        finally:
            self._running.pop(running.job.id, None)


async def video_worker_resource(
    worker: VideoWorker, streams: JobStreams, *, schema_ready: object = None
) -> AsyncIterator[VideoWorker]:
    """Container resource: the worker starts with the app, once the schema is migrated (``schema_ready``), and
    stops (handing its jobs over) with it."""
    del schema_ready  # a dependency only: its provider runs the migrations first
    worker.start()
    try:
        yield worker
    finally:
        await worker.stop()
        await streams.aclose()
