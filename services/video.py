"""Use case: video generation as durable jobs, the API side. ``submit`` checks the request against the model's
catalog entry, keeps a first-frame image in the media store, opens the job's progress stream (``queued``) and stores
the job; a worker (``services/video_worker.py``, in this process or another) claims it and takes it to its end.
``get``/``list`` read jobs, ``cancel`` ends one whoever holds it, ``content`` says where a finished video is.

The catalog entry of a video model may list what it films in ``default_params``: ``video_durations`` (seconds),
``video_aspect_ratios``, ``video_resolutions``, ``video_audio`` (``false``: no soundtrack to turn on) and
``video_first_frame`` (``false``: text only). A request outside those lists is a 422 naming the field and the
allowed values; a list left out leaves the choice to the vendor (its adapter checks what it must).

A job passes the quota gate at ``submit`` (429 over a limit, 403 a model its API key may not use) and holds, until
it ends, one request, one slot in flight and its estimated cost: the seconds asked for (or, when left to the model,
the longest it lists, else ``DEFAULT_VIDEO_SECONDS``) at the dearest candidate's price. The hold is *detached*: it
is named after the job, lasts ``hold_s`` (the longest a job may run, plus a lease) without renewal, and is settled by
``JobAccounts.record`` whichever process ends the job, after the job's actual cost was counted (for the customer and
for the API key that submitted it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import attrs
from attrs import frozen

from domain.catalog import ModelSpec
from domain.errors import ConflictError, ServiceError, ValidationError
from domain.media import MediaId, MediaObject
from domain.metering import Units
from domain.pricing import cost_usd
from domain.quotas import Reservation
from domain.streaming import Outcome
from domain.types import CustomerId
from domain.usage import UsageRecord
from domain.video import VideoJob, VideoJobId, VideoRequest, new_video_job_id
from ports.media import MediaStore
from ports.metrics import Metrics
from ports.usage import UsageLedger
from ports.video import VideoJobStore
from services.attempts import AttemptRunner, Caller, Candidates
from services.quotas import QuotaGate
from services.video_streams import JobStreams

__all__ = [
    "FIRST_FRAME_TYPES",
    "MAX_PROMPT_CHARACTERS",
    "JobAccounts",
    "VideoConfig",
    "VideoService",
    "plan_video",
    "request_problem",
    "video_reservation_id",
]

MAX_PROMPT_CHARACTERS: Final = 5_000
"""Longest prompt (Veo counts ~1,024 tokens; characters are checked here, the vendor counts tokens)."""
FIRST_FRAME_TYPES: Final = ("image/png", "image/jpeg")
MAX_SEED: Final = 2**32 - 1
_CAPABILITY: Final = "video"
DEFAULT_VIDEO_SECONDS: Final = 8
"""Seconds a job is reserved for when it leaves the duration to a model that lists none (Veo's default length)."""


def video_reservation_id(job_id: str) -> str:
    """The quota reservation a job holds while it runs (any process that ends the job can settle it by this)."""
    return f"q_video_{job_id}"


def _reserved_seconds(request: VideoRequest, spec: ModelSpec) -> int:
    if request.duration_s is not None:
        return request.duration_s
    listed = [value for value in _allowed(spec, "video_durations") if isinstance(value, int | float)]
    return int(max(listed, default=DEFAULT_VIDEO_SECONDS))


@frozen
class VideoConfig:
    """Plain values from ``settings.video`` (the container builds this; services never read settings)."""

    poll_interval_s: float = 2.0
    poll_max_interval_s: float = 20.0
    max_job_s: float = 1800.0
    lease_s: float = 60.0
    worker_concurrency: int = 8


def _allowed(spec: ModelSpec, key: str) -> list[Any]:
    value = spec.default_params.get(key)
    return list(value) if isinstance(value, list | tuple) else []


def request_problem(request: VideoRequest, spec: ModelSpec) -> ValidationError | None:
    """Why ``spec`` cannot film ``request`` as asked (naming the field and what is allowed), or ``None``."""
    for field, value, key in (
        ("duration_s", request.duration_s, "video_durations"),
        ("aspect_ratio", request.aspect_ratio, "video_aspect_ratios"),
        ("resolution", request.resolution, "video_resolutions"),
    ):
        allowed = _allowed(spec, key)
        if value is not None and allowed and value not in allowed:
            shown = ", ".join(str(a) for a in allowed)
            return ValidationError(
                field,
                f"model {spec.qualified_id!r} takes {field} {shown}; got {value!r}",
                context={"model": spec.qualified_id, "allowed": allowed},
            )
    if request.audio and spec.default_params.get("video_audio") is False:
        return ValidationError(
            "audio", f"model {spec.qualified_id!r} films without sound", context={"allowed": [False]}
        )
    if request.first_frame is not None and spec.default_params.get("video_first_frame") is False:
        return ValidationError("first_frame", f"model {spec.qualified_id!r} films from text only")
    return None


def _check(request: VideoRequest) -> None:
    if not request.model.strip():
        raise ValidationError("model", "must not be empty")
    if not request.prompt.strip():
        raise ValidationError("prompt", "must not be empty or blank")
    for field, text in (("prompt", request.prompt), ("negative_prompt", request.negative_prompt or "")):
        if len(text) > MAX_PROMPT_CHARACTERS:
            raise ValidationError(
                field, f"at most {MAX_PROMPT_CHARACTERS} characters", context={"limit": MAX_PROMPT_CHARACTERS}
            )
    if request.duration_s is not None and request.duration_s < 1:
        raise ValidationError("duration_s", "must be at least 1 second")
    if request.seed is not None and not 0 <= request.seed <= MAX_SEED:
        raise ValidationError("seed", f"must be from 0 to {MAX_SEED}")
    frame = request.first_frame
    if frame is not None:
        if frame.mime_type not in FIRST_FRAME_TYPES:
            raise ValidationError("first_frame.mime_type", f"expected one of {', '.join(FIRST_FRAME_TYPES)}")
        if not frame.data:
            raise ValidationError("first_frame.b64_json", "must not be empty")


def plan_video(runner: AttemptRunner, request: VideoRequest) -> Candidates:
    """The models to try for a valid ``request``: a ``ValidationError`` naming the field otherwise, 404/422 from the
    registry for an unknown model or one without the ``video`` capability; fallbacks that cannot film the request
    as asked are skipped."""
    _check(request)
    candidates = runner.candidates(request.model, capabilities=[_CAPABILITY], fallbacks=request.fallbacks)
    problem = request_problem(request, candidates.primary)
    if problem is not None:
        raise problem
    fit = tuple(spec for spec in candidates.models if request_problem(request, spec) is None)
    return Candidates(candidates.capability, fit)


class JobAccounts:
    """One usage record per job outcome (``done``, ``cancelled`` or the error code), whoever ended the job: video
    seconds priced at the model's ``video_price_per_second`` for a video made, nothing for the rest. The submission's
    provider calls leave their own records through the attempt runner (no units)."""

    def __init__(
        self, runner: AttemptRunner, usage: UsageLedger, metrics: Metrics, *, quotas: QuotaGate | None = None
    ) -> None:
        self._registry = runner.registry
        self._usage = usage
        self._metrics = metrics
        self._quotas = quotas or QuotaGate.unlimited()

    async def record(self, job: VideoJob, outcome: str, now: datetime, video_seconds: float = 0.0) -> None:
        model = job.served_by or job.model
        spec = self._spec(model)
        units = Units(video_seconds=video_seconds)
        cost = cost_usd(units, spec) if spec is not None and video_seconds else None
        provider = spec.provider if spec is not None else model.partition("/")[0]
        record = UsageRecord(
            request_id=job.id,
            customer_id=job.owner,
            capability=_CAPABILITY,
            provider=provider,
            model=model,
            outcome=outcome,
            created_at=now,
            stream_id=job.stream_id,
            video_seconds=video_seconds,
            cost_usd=cost or 0.0,
            latency_ms=round(max(0.0, (now - job.created_at).total_seconds()) * 1000, 3),
            fallback_used=job.served_by if job.served_by not in (None, job.model) else None,
        )
        labels = {"provider": provider, "model": model}
        if video_seconds:
            self._metrics.increment("usage_units_total", video_seconds, unit="video_seconds", **labels)
        if cost:
            self._metrics.increment("cost_usd_total", cost, **labels)
        # Counted (for the job's key too: the worker has no caller bound) before the hold is given back, so the
        # spend is never neither held nor counted; ``usage`` is the plain ledger, so it is counted once.
        await self._quotas.count(record, key_id=job.api_key_id)
        try:
            await self._usage.record(record)
        except ServiceError:
            self._metrics.increment("ledger_flush_failures_total")
        await self._quotas.release_detached(job.owner, video_reservation_id(job.id))

    def _spec(self, model: str) -> ModelSpec | None:
        try:
            return self._registry.resolve(model)
        except ServiceError:
            return None  # no longer in the catalog: recorded unpriced under the name the job kept


class VideoService:
    """The API's use cases on video jobs; the worker that runs them shares ``streams`` and the store."""

    def __init__(
        self,
        runner: AttemptRunner,
        jobs: VideoJobStore,
        streams: JobStreams,
        media: MediaStore,
        accounts: JobAccounts,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        quotas: QuotaGate | None = None,
        hold_s: float = 1800.0 + 60.0,
    ) -> None:
        self.runner = runner
        self._quotas = quotas or QuotaGate.unlimited()
        self._hold_s = hold_s
        self._jobs = jobs
        self._streams = streams
        self._media = media
        self._accounts = accounts
        self._now = now

    async def submit(self, request: VideoRequest, owner: CustomerId) -> VideoJob:
        """Check ``request``, store it as a ``queued`` job of ``owner`` with its progress stream, and wake the local
        worker. The job id is also the ``request_id`` of its usage records."""
        planned = plan_video(self.runner, request)
        job_id = new_video_job_id()
        seconds = _reserved_seconds(request, planned.primary)
        admission = await self._quotas.admit(
            Caller(owner, job_id),
            planned,
            lambda _: Units(video_seconds=seconds),
            detached_id=video_reservation_id(job_id),
            hold_s=self._hold_s,
        )
        try:
            return await self._store(request, owner, job_id, admission.candidates, admission.reservation)
        except BaseException:
            await self._quotas.release_detached(owner, video_reservation_id(job_id))
            raise

    async def _store(
        self,
        request: VideoRequest,
        owner: CustomerId,
        job_id: VideoJobId,
        candidates: Candidates,
        reservation: Reservation | None,
    ) -> VideoJob:
        model = candidates.primary.qualified_id
        first_frame: MediaObject | None = None
        if request.first_frame is not None:
            frame = request.first_frame
            first_frame = await self._media.put(owner, frame.data, frame.mime_type, kind="video_input")
        stream_id = await self._streams.open(job_id, owner, model)
        now = self._now()
        job = VideoJob(
            id=job_id,
            owner=owner,
            model=model,
            request=attrs.evolve(request, first_frame=None),
            stream_id=stream_id,
            created_at=now,
            updated_at=now,
            due_at=now,
            first_frame_media_id=first_frame.id if first_frame else None,
            api_key_id=reservation.key_id if reservation is not None else None,
        )
        await self._streams.publish(job_id, "queued", {"job_id": job_id, "status": "queued", "model": model})
        try:
            await self._jobs.create(job)
        except ServiceError as exc:
            await self._streams.finish(job_id, Outcome.error(exc.code, exc.message, retryable=bool(exc.retryable)))
            raise
        self._streams.wakeup.set()
        return job

    async def get(self, owner: CustomerId, job_id: str) -> VideoJob:
        """``owner``'s job (404 for anyone else's)."""
        return await self._jobs.get(owner, job_id)

    async def page(self, owner: CustomerId, *, limit: int, offset: int) -> tuple[Sequence[VideoJob], int]:
        """A page of ``owner``'s jobs, newest first, and their total."""
        return await self._jobs.page(owner, limit=limit, offset=offset)

    async def cancel(self, owner: CustomerId, job_id: str) -> VideoJob:
        """End ``owner``'s job with ``cancelled`` whoever works on it (the vendor's operation is abandoned; Veo has
        no cancel). A job that has already ended is answered as it is."""
        job, changed = await self._jobs.cancel(owner, job_id, now=self._now())
        if not changed:
            return job
        self._streams.interrupt(job_id)
        if self._streams.holds(job_id):
            await self._streams.finish(job_id, Outcome.cancelled("client"))
        else:
            await self._streams.cancel_elsewhere(owner, job.stream_id)
        await self._accounts.record(job, "cancelled", self._now())
        return job

    async def content(self, owner: CustomerId, job_id: str) -> MediaId:
        """Where ``owner``'s finished video is (409 ``conflict`` while the job has not succeeded)."""
        job = await self._jobs.get(owner, job_id)
        if job.result is None:
            raise ConflictError(
                f"the video is not available: the job is {job.status}", context={"id": job_id, "status": job.status}
            )
        return MediaId(job.result.media_id)
