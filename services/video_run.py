"""Use case internals: one claimed video job taken to its end by the worker (``services/video_worker.py``).

The steps: become the producer of the job's progress stream (``JobStreams.attach``, else a new stream recorded on
the job); submit a ``queued`` job through the attempt runner (retries, ``Retry-After``, fallbacks, a usage record per
provider call) so it becomes ``running`` with the vendor's operation; poll the operation, first ``poll_interval_s``
after the last look and backing off to ``poll_max_interval_s`` (a poll that fails is asked again later, an operation
that failed fails the job); download the video (a download cut short is fetched again, with backoff), keep it in the
media store for the job's owner, and end the job ``succeeded`` and its stream ``done`` with the result.

A heartbeat renews the lease every third of ``lease_s`` whatever the job is doing; a renewal refused means the job
is no longer ours (cancelled, or taken over after this worker stalled): its task stops at its next pause and writes
nothing more. A job never runs past ``max_job_s`` after its submission (``job_timeout``) and every failure ends it
``failed`` with the error's code: nothing stays ``running``. One usage record per job outcome (``JobAccounts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

import attrs
from attrs import define, field

from domain.catalog import ModelSpec
from domain.errors import CapabilityError, ServiceError
from domain.metering import Units
from domain.streaming import Outcome
from domain.types import JsonValue
from domain.video import (
    FirstFrame,
    GeneratedVideo,
    JobError,
    JobTimeoutError,
    VideoJob,
    VideoOperation,
    VideoRequest,
    VideoResult,
    content_path,
)
from ports.media import MediaStore
from ports.video import VIDEO_PORT, VideoJobStore, VideoProvider
from services.attempts import AttemptRunner, Caller
from services.video import JobAccounts, VideoConfig, plan_video
from services.video_streams import JobStreams

__all__ = ["JobRunner", "Running", "result_payload"]

_log = logging.getLogger("switchyard.video")
_DOWNLOAD_ATTEMPTS: Final = 5


class _LeaseLost(Exception):
    """This worker no longer holds the job (cancelled, or taken over): stop without writing anything more."""


class _Interrupted(Exception):
    """The job's task was asked to stop (the job is no longer ours, or the worker stops)."""


@define
class Running:
    """A job this worker works on: its latest state, the lease it holds and the task doing the work.

    Tasks are stopped at their pauses, never cancelled in the middle of a database call (aiosqlite cannot close a
    connection whose call was cancelled): ``wake`` cuts a pause short, ``ended`` stops the heartbeat."""

    job: VideoJob
    holder: str
    task: asyncio.Task[None] | None = None
    lost: bool = False
    """Set when the job stopped being ours (cancelled, taken over): its task stops and writes nothing more."""
    stopping: bool = False
    """Set when the worker stops: the task hands the job over."""
    settling: bool = False
    """Set once the task writes the job's end: the lease ends with it, which the heartbeat must not take for a loss."""
    wake: asyncio.Event = field(factory=asyncio.Event)
    ended: asyncio.Event = field(factory=asyncio.Event)

    def interrupt(self) -> None:
        """Stop the task because the job is no longer ours."""
        if not self.settling:
            self.lost = True
            self.wake.set()

    def stop(self) -> None:
        """Stop the task because the worker stops."""
        self.stopping = True
        self.wake.set()


async def _pause(event: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` unless ``event`` is set first; whether it was."""
    if not event.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds)):
                await event.wait()
    return event.is_set()


def result_payload(job: VideoJob) -> dict[str, JsonValue]:
    """What a job's ``done`` event and API answer say of its video."""
    result = job.result
    if result is None:
        return {}
    return {
        "media_id": result.media_id,
        "url": result.url,
        "duration_s": result.duration_s,
        "width": result.width,
        "height": result.height,
    }


class JobRunner:
    """Takes one claimed job (a ``Running``) to its end; shared by the worker's job tasks."""

    def __init__(
        self,
        runner: AttemptRunner,
        jobs: VideoJobStore,
        streams: JobStreams,
        media: MediaStore,
        accounts: JobAccounts,
        config: VideoConfig,
        now: Callable[[], datetime],
    ) -> None:
        self._runner = runner
        self._jobs = jobs
        self._streams = streams
        self._media = media
        self._accounts = accounts
        self._config = config
        self._now = now

    async def run(self, running: Running) -> None:
        """Work on the job until it ends, is no longer ours, or the worker stops (see the module docstring)."""
        heartbeat = asyncio.create_task(self._heartbeat(running), name=f"video-lease:{running.job.id}")
        try:
            await self._attach_stream(running)
            if self._left(self._deadline(running.job)) <= 0:  # waited in the queue past its life: do not submit
                raise self._timeout()
            _check(running)
            if running.job.operation is None:
                await self._submit(running)
            await self._follow(running)
        except (_LeaseLost, _Interrupted):
            if running.lost or not running.stopping:
                await self._after_loss(running)
            else:
                await self._hand_over(running)
        except asyncio.CancelledError:  # stop() ran out of patience with a vendor call
            await self._hand_over(running)
        except ServiceError as exc:
            await self._fail(running, exc)
        except Exception:  # noqa: BLE001 - any crash fails the job with internal_error: never stuck in running
            _log.exception("video_job_crashed", extra={"job_id": running.job.id})
            await self._fail(running, ServiceError("the video job failed unexpectedly"), code="internal_error")
        finally:
            running.ended.set()
            await asyncio.gather(heartbeat, return_exceptions=True)
            self._streams.done_working(running.job.id)

    async def _heartbeat(self, running: Running) -> None:
        """Renew the lease every third of its length; a renewal refused means the job is no longer ours."""
        while not await _pause(running.ended, self._config.lease_s / 3):
            try:
                renewed = await self._renew(running, progress=None)
            except ServiceError as exc:
                _log.warning("video_lease_renewal_failed", extra={"job_id": running.job.id, "error": exc.code})
                continue
            if renewed is None:
                running.interrupt()
                return

    async def _renew(self, running: Running, *, progress: float | None) -> VideoJob | None:
        now = self._now()
        job = await self._jobs.renew(
            running.job.id, running.holder, now=now, lease_s=self._config.lease_s, progress=progress, due_at=now
        )
        if job is not None:
            running.job = job
        return job

    async def _attach_stream(self, running: Running) -> None:
        job = running.job
        if await self._streams.attach(job.id, job.owner, job.stream_id):
            if job.claims > 1:  # resumed on the same stream (taken over): say so
                await self._streams.publish(job.id, "progress", _progress(job, resumed=True))
            return
        stream_id = await self._streams.open(job.id, job.owner, job.model)
        moved = await self._jobs.set_stream(job.id, running.holder, stream_id)
        if moved is None:
            raise _LeaseLost
        running.job = moved
        payload = {**_progress(moved, resumed=True), "previous_stream_id": job.stream_id}
        await self._streams.publish(job.id, "progress", payload)

    async def _submit(self, running: Running) -> None:
        job = running.job
        request = await self._request(job)
        candidates = plan_video(self._runner, request)

        async def invoke(provider: VideoProvider, spec: ModelSpec) -> VideoOperation:
            return await provider.submit(request, spec)

        served = await self._runner.call(
            candidates,
            Caller(job.owner, job.id),
            VIDEO_PORT,
            invoke,
            units=lambda _operation: Units(),  # nothing is billed until a video exists (JobAccounts)
            stream_id=job.stream_id,
        )
        started = await self._jobs.start(
            job.id, running.holder, operation=served.value, served_by=served.model.qualified_id, now=self._now()
        )
        if started is None:
            raise _LeaseLost
        running.job = started
        await self._streams.publish(job.id, "progress", _progress(started))

    async def _request(self, job: VideoJob) -> VideoRequest:
        if job.first_frame_media_id is None:
            return job.request
        media = await self._media.head(job.owner, job.first_frame_media_id)  # type: ignore[arg-type]
        data = await self._media.read(job.owner, media.id)
        return attrs.evolve(job.request, first_frame=FirstFrame(data, media.content_type))

    async def _follow(self, running: Running) -> None:
        job = running.job
        assert job.operation is not None
        assert job.served_by is not None
        spec = self._runner.registry.resolve(job.served_by)
        provider = self._runner.registry.provider(spec, VIDEO_PORT)
        if provider is None:
            raise CapabilityError(spec.qualified_id, "video", f"provider {spec.provider!r} no longer serves video")
        deadline = self._deadline(job)
        delay = self._config.poll_interval_s
        while True:
            await self._wait(running, min(delay, self._left(deadline)), deadline)
            try:
                state = await provider.poll(job.operation, spec)
            except ServiceError as exc:
                if not exc.retryable:
                    raise  # the operation failed (or the vendor refuses to say): final
                _log.info("video_poll_failed", extra={"job_id": job.id, "error": exc.code})
            else:
                if state.progress is not None and state.progress != running.job.progress:
                    if await self._renew(running, progress=state.progress) is None:
                        raise _LeaseLost
                    await self._streams.publish(job.id, "progress", _progress(running.job))
                if state.done:
                    break
            delay = min(delay * 1.5, self._config.poll_max_interval_s)
        video = await self._download(running, provider, spec, deadline)
        _check(running)
        await self._complete(running, video)

    async def _download(
        self, running: Running, provider: VideoProvider, spec: ModelSpec, deadline: datetime
    ) -> GeneratedVideo:
        operation = running.job.operation
        assert operation is not None
        delay = self._config.poll_interval_s
        for attempt in range(1, _DOWNLOAD_ATTEMPTS + 1):
            try:
                return await provider.fetch(operation, spec)
            except ServiceError as exc:
                if not exc.retryable or attempt == _DOWNLOAD_ATTEMPTS:
                    raise
                _log.info("video_download_retried", extra={"operation": operation.name, "error": exc.code})
            await self._wait(running, min(delay, self._left(deadline)), deadline)
            delay = min(delay * 2, self._config.poll_max_interval_s)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _complete(self, running: Running, video: GeneratedVideo) -> None:
        job = running.job
        running.settling = True
        stored = await self._media.put(job.owner, video.data, video.mime_type, kind="video")
        result = VideoResult(stored.id, content_path(job.id), video.duration_s, video.width, video.height)
        done = await self._jobs.complete(job.id, running.holder, result=result, now=self._now())
        if done is None:
            with contextlib.suppress(ServiceError):
                await self._media.delete(job.owner, stored.id)
            raise _LeaseLost
        running.job = done
        await self._accounts.record(done, "done", self._now(), video_seconds=video.duration_s)
        payload: dict[str, JsonValue] = {"job_id": done.id, "status": done.status, "result": result_payload(done)}
        await self._streams.finish(done.id, Outcome.done(payload))

    async def _fail(self, running: Running, error: ServiceError, *, code: str | None = None) -> None:
        job = running.job
        reason = JobError(code or error.code, error.message, bool(error.retryable))
        running.settling = True
        try:
            failed = await self._jobs.fail(job.id, running.holder, error=reason, now=self._now())
        except ServiceError as exc:  # the database is down: the lease lapses and another worker ends the job
            _log.warning("video_job_fail_not_recorded", extra={"job_id": job.id, "error": exc.code})
            return
        if failed is None:
            await self._after_loss(running)
            return
        running.job = failed
        await self._accounts.record(failed, reason.code, self._now())
        outcome = Outcome.error(reason.code, reason.message, retryable=reason.retryable, job_id=job.id)
        await self._streams.finish(job.id, outcome)

    async def _after_loss(self, running: Running) -> None:
        """The job is no longer ours: cancelled (end our stream so), or taken over (say where it went, if our
        stream is still ours to end: a takeover of the stream itself fenced us out already)."""
        job = running.job
        try:
            current = await self._jobs.get(job.owner, job.id)
        except ServiceError:
            current = job
        if current.status == "cancelled":
            await self._streams.finish(job.id, Outcome.cancelled("client"))
        else:
            await self._streams.finish(job.id, _interrupted(current))

    async def _wait(self, running: Running, seconds: float, deadline: datetime) -> None:
        """Pause until the next look, unless the job's task is asked to stop; past the job's life, end it."""
        if self._left(deadline) <= 0:
            raise self._timeout()
        if await _pause(running.wake, seconds):
            raise _Interrupted

    async def _hand_over(self, running: Running) -> None:
        """The worker stops: give the lease up (another worker resumes the job at once) and end this stream
        saying so (a no-op when the manager's shutdown ended it first)."""
        with contextlib.suppress(ServiceError):
            await self._jobs.release(running.job.id, running.holder)
        await self._streams.finish(running.job.id, _interrupted(running.job))

    def _deadline(self, job: VideoJob) -> datetime:
        return job.created_at + timedelta(seconds=self._config.max_job_s)

    def _timeout(self) -> JobTimeoutError:
        return JobTimeoutError(
            f"the video job did not finish within {self._config.max_job_s:g} s of its submission",
            context={"max_job_s": self._config.max_job_s},
        )

    def _left(self, deadline: datetime) -> float:
        return (deadline - self._now()).total_seconds()


def _check(running: Running) -> None:
    if running.lost or running.stopping:
        raise _Interrupted


def _progress(job: VideoJob, *, resumed: bool = False) -> dict[str, JsonValue]:
    payload: dict[str, JsonValue] = {
        "job_id": job.id,
        "status": job.status,
        "progress": job.progress,
        "model": job.served_by or job.model,
    }
    if resumed:
        payload["resumed"] = True
    return payload


def _interrupted(job: VideoJob) -> Outcome:
    """This stream ends while the job goes on elsewhere (retryable: read the job for its current stream)."""
    return Outcome.error(
        "job_moved",
        "the process producing this stream stopped working on the job, which goes on; "
        f"GET /api/v1/videos/{job.id} for its current stream",
        retryable=True,
        job_id=job.id,
    )
