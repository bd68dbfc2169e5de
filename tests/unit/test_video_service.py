"""Video jobs, service and worker together over fakes (in-memory store, media and ledger; a real StreamingManager on
the memory stream log): the request's rules, a job from ``queued`` to ``done`` with its progress stream, retries of
the submission and the download, failures and the job's bounded life, cancellation, one usage record per outcome,
and a job resumed by another worker (after a stop, or once a dead holder's lease lapsed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import pytest

from adapters.memory.quotas import InMemoryQuotaStore
from adapters.memory.stream_log import InMemoryStreamLog
from domain.auth import AuthContext
from domain.catalog import ModelSpec
from domain.errors import CapabilityError, ConflictError, NotFoundError, ProviderError, RateLimitError, ValidationError
from domain.quotas import Limits, QuotaExceededError
from domain.streaming import StreamEvent
from domain.types import CustomerId, StreamId
from domain.video import FirstFrame, VideoJob, VideoOperationError, VideoRequest
from ports.video import VIDEO_PORT
from services.attempts import AttemptRunner, RetryPolicy
from services.principal import bind_principal
from services.quotas import QuotaGate, QuotaPolicy
from services.registry import ProviderRegistry
from services.streaming.manager import StreamingManager
from services.streaming.runs import StreamingConfig
from services.video import JobAccounts, VideoConfig, VideoService
from services.video_streams import JobStreams
from services.video_worker import VideoWorker
from tests.fakes.images import InMemoryMediaStore
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.providers import vendors_with
from tests.fakes.usage import InMemoryUsageLedger
from tests.fakes.video import InMemoryVideoJobStore, ScriptedVideoProvider

ALICE: Final = CustomerId("alice")
BOB: Final = CustomerId("bob")
CONFIG: Final = VideoConfig(poll_interval_s=0.01, poll_max_interval_s=0.02, max_job_s=5.0, lease_s=0.3)
VEO_PARAMS: Final = {
    "video_durations": [4, 6, 8],
    "video_aspect_ratios": ["16:9", "9:16"],
    "video_resolutions": ["720p", "1080p"],
}


def video_spec(model_id: str, provider: str, **kwargs: Any) -> ModelSpec:
    kwargs.setdefault("default_params", dict(VEO_PARAMS))
    return ModelSpec(
        id=model_id, provider=provider, capabilities=frozenset({"video"}), video_price_per_second=0.4, **kwargs
    )


CATALOG: Final = [
    video_spec("veo", "alpha", fallbacks=("beta/veo",)),
    video_spec("veo", "beta"),
    video_spec("mute", "alpha", default_params={"video_audio": False}),
    ModelSpec(id="chat", provider="alpha", capabilities=frozenset({"text"})),
]


class Process:
    """What one serving process holds: a stream manager (on its own log unless given one), the job streams, the
    API service and a worker; the store, media, ledger and vendors are shared, as the database and vendors are."""

    def __init__(self, world: World, log: InMemoryStreamLog | None = None, config: VideoConfig = CONFIG) -> None:
        self.log = log if log is not None else InMemoryStreamLog()
        self.manager = StreamingManager(self.log, config=StreamingConfig(resume_grace_s=0.2, first_consumer_s=0.2))
        self.streams = JobStreams(self.manager, silence_s=config.max_job_s)
        accounts = JobAccounts(world.runner, world.usage, world.metrics, quotas=world.gate)
        hold_s = config.max_job_s + config.lease_s
        self.service = VideoService(
            world.runner, world.jobs, self.streams, world.media, accounts, quotas=world.gate, hold_s=hold_s
        )
        self.worker = VideoWorker(world.runner, world.jobs, self.streams, world.media, accounts, config)

    async def events(self, stream_id: StreamId, owner: CustomerId = ALICE) -> list[StreamEvent]:
        """Every event of the stream, to its terminal one."""
        async with asyncio.timeout(10):
            return [event async for event in self.manager.subscribe(stream_id, owner=owner)]

    async def aclose(self) -> None:
        await self.worker.stop()
        await self.streams.aclose()
        await self.manager.aclose()


class World:
    def __init__(
        self, alpha: ScriptedVideoProvider, beta: ScriptedVideoProvider | None = None, gate: QuotaGate | None = None
    ) -> None:
        self.gate = gate
        self.alpha = alpha
        self.beta = beta or ScriptedVideoProvider(name="beta")
        self.usage = InMemoryUsageLedger()
        self.metrics = RecordingMetrics()
        self.media = InMemoryMediaStore()
        self.jobs = InMemoryVideoJobStore()
        registry = ProviderRegistry(CATALOG, vendors_with(VIDEO_PORT, {"alpha": self.alpha, "beta": self.beta}))
        self.runner = AttemptRunner(registry, self.usage, self.metrics, RetryPolicy(max_retries=2, base_delay_s=0.0))

    def outcome_records(self) -> list[Any]:
        """The job-outcome records (the runner's submission records carry no video seconds and outcome done)."""
        return [r for r in self.usage.records if r.request_id.startswith("vid_") and r.latency_ms and r.retries == 0]


@pytest.fixture
def world() -> World:
    return World(ScriptedVideoProvider(name="alpha"))


@pytest.fixture
async def process(world: World) -> AsyncIterator[Process]:
    proc = Process(world)
    yield proc
    await proc.aclose()


def request(**changes: Any) -> VideoRequest:
    changes.setdefault("model", "alpha/veo")
    changes.setdefault("prompt", "a paper boat on a river")
    return VideoRequest(**changes)


async def run_to_end(process: Process, job: VideoJob) -> VideoJob:
    """Start the worker and wait for the job to end."""
    process.worker.start()
    async with asyncio.timeout(10):
        while True:
            current = await process.service.get(job.owner, job.id)
            if current.finished:
                return current
            await asyncio.sleep(0.01)


async def until_running(process: Process, job: VideoJob) -> None:
    """Start the worker and wait until the vendor took the job."""
    process.worker.start()
    async with asyncio.timeout(5):
        while True:
            if (await process.service.get(job.owner, job.id)).status == "running":
                return
            await asyncio.sleep(0.01)


def types(events: Sequence[StreamEvent]) -> list[str]:
    return [event.type for event in events]


# --- the request's rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"prompt": "  "}, "prompt"),
        ({"duration_s": 5}, "duration_s"),
        ({"aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"resolution": "4k"}, "resolution"),
        ({"seed": -1}, "seed"),
        ({"first_frame": FirstFrame(b"GIF89a", "image/gif")}, "first_frame.mime_type"),
        ({"model": "alpha/mute", "audio": True}, "audio"),
    ],
)
async def test_a_request_the_model_cannot_film_is_a_422_naming_the_field(
    process: Process, changes: dict[str, Any], field: str
) -> None:
    """Each rule names its field; nothing is stored and no stream is opened."""
    with pytest.raises(ValidationError) as caught:
        await process.service.submit(request(**changes), ALICE)
    assert caught.value.field == field
    assert process.manager.active_streams == 0


async def test_the_allowed_values_are_listed(process: Process) -> None:
    """A duration the entry does not list says which ones it does."""
    with pytest.raises(ValidationError) as caught:
        await process.service.submit(request(duration_s=5), ALICE)
    assert caught.value.context["allowed"] == [4, 6, 8]


async def test_unknown_models_and_models_without_video_are_refused(process: Process) -> None:
    """404 for a model nobody serves, 422 for one that cannot make videos."""
    with pytest.raises(NotFoundError):
        await process.service.submit(request(model="alpha/nope"), ALICE)
    with pytest.raises(CapabilityError):
        await process.service.submit(request(model="alpha/chat"), ALICE)


# --- a job from queued to done ---------------------------------------------------------------------------------


async def test_a_job_is_queued_with_its_stream_and_belongs_to_its_owner(process: Process) -> None:
    """Submission answers a queued job whose stream says ``queued``; another customer cannot see it."""
    job = await process.service.submit(request(duration_s=8), ALICE)
    assert (job.status, job.model, job.owner) == ("queued", "alpha/veo", ALICE)
    assert (await process.service.get(ALICE, job.id)).stream_id == job.stream_id
    with pytest.raises(NotFoundError):
        await process.service.get(BOB, job.id)
    info = await process.manager.describe(job.stream_id, owner=ALICE)
    assert (info.kind, info.meta["job_id"]) == ("video", job.id)


async def test_a_job_runs_to_done_with_progress_and_one_outcome_record(world: World, process: Process) -> None:
    """queued, progress ... then done with the result; the MP4 is in the media store; the job's outcome is billed
    once in video seconds at the entry's price, beside the submission's own (unit-less) record."""
    job = await process.service.submit(request(duration_s=8), ALICE)
    done = await run_to_end(process, job)
    events = await process.events(job.stream_id)
    assert types(events)[0] == "queued"
    assert types(events)[-1] == "done"
    assert "progress" in types(events)
    assert done.status == "succeeded"
    assert done.result is not None
    assert events[-1].payload["result"] == {
        "media_id": done.result.media_id,
        "url": f"/api/v1/videos/{job.id}/content",
        "duration_s": 8.0,
        "width": 1280,
        "height": 720,
    }
    media_id = await process.service.content(ALICE, job.id)
    assert await world.media.read(ALICE, media_id) == b"\x00\x00\x00\x18ftypmp42"
    outcome = [r for r in world.usage.records if r.video_seconds]
    assert len(outcome) == 1
    assert (outcome[0].outcome, outcome[0].video_seconds, outcome[0].cost_usd) == ("done", 8.0, 3.2)
    assert (outcome[0].request_id, outcome[0].capability, outcome[0].model) == (job.id, "video", "alpha/veo")
    submissions = [r for r in world.usage.records if not r.video_seconds]
    assert [(r.outcome, r.cost_usd) for r in submissions] == [("done", 0.0)]
    assert world.metrics.total("usage_units_total") == 8.0


async def test_content_is_a_conflict_until_the_job_succeeded(process: Process) -> None:
    """No video yet: a 409 saying the job's status."""
    job = await process.service.submit(request(), ALICE)
    with pytest.raises(ConflictError) as caught:
        await process.service.content(ALICE, job.id)
    assert caught.value.context["status"] == "queued"


async def test_a_rate_limited_submission_is_retried_then_served(world: World, process: Process) -> None:
    """The attempt runner retries a 429 at submission; one record per provider call, then the outcome."""
    world.alpha.submit_errors.append(RateLimitError("slow down", retry_after=0.0))
    job = await process.service.submit(request(), ALICE)
    done = await run_to_end(process, job)
    assert (done.status, done.served_by) == ("succeeded", "alpha/veo")
    assert [r.outcome for r in world.usage.records] == ["rate_limited", "done", "done"]


async def test_a_submission_that_fails_falls_back(world: World, process: Process) -> None:
    """A final failure of the requested model's vendor moves the job to the catalog's fallback."""
    world.alpha.submit_errors.append(ProviderError("alpha", "down for good"))
    job = await process.service.submit(request(), ALICE)
    done = await run_to_end(process, job)
    assert (done.status, done.served_by) == ("succeeded", "beta/veo")
    outcome = [r for r in world.usage.records if r.video_seconds]
    assert (outcome[0].model, outcome[0].fallback_used) == ("beta/veo", "beta/veo")


async def test_a_download_cut_short_is_fetched_again(world: World, process: Process) -> None:
    """A retryable failure of the download is retried; the job still succeeds."""
    world.alpha.fetch_errors.append(ProviderError("alpha", "the download was cut short", retryable=True))
    job = await process.service.submit(request(), ALICE)
    done = await run_to_end(process, job)
    assert done.status == "succeeded"
    assert world.alpha.fetches == 2


async def test_a_poll_that_fails_is_asked_again(world: World, process: Process) -> None:
    """A retryable failure of the question (not of the operation) only delays the job."""
    world.alpha.poll_errors.append(ProviderError("alpha", "503", retryable=True))
    job = await process.service.submit(request(), ALICE)
    assert (await run_to_end(process, job)).status == "succeeded"


# --- failures ---------------------------------------------------------------------------------------------------


async def test_a_failed_operation_fails_the_job_with_its_code(world: World, process: Process) -> None:
    """The vendor's operation failed: the job ``failed`` with a typed reason, the stream ends ``error``, the
    outcome record carries the code and no cost."""
    world.alpha.failures["ops/1"] = VideoOperationError("alpha", "alpha: the video generation failed")
    job = await process.service.submit(request(), ALICE)
    failed = await run_to_end(process, job)
    assert failed.status == "failed"
    assert failed.error is not None
    assert (failed.error.code, failed.error.retryable) == ("video_generation_failed", False)
    events = await process.events(job.stream_id)
    assert types(events)[-1] == "error"
    assert events[-1].payload["code"] == "video_generation_failed"
    assert [r.outcome for r in world.usage.records][-1] == "video_generation_failed"
    assert world.usage.records[-1].cost_usd == 0.0


async def test_nothing_stays_running_past_the_jobs_life(world: World) -> None:
    """An operation that never finishes ends the job ``failed`` with ``job_timeout`` once ``max_job_s`` passed."""
    world.alpha.done_after = None
    proc = Process(world, config=VideoConfig(poll_interval_s=0.01, poll_max_interval_s=0.02, max_job_s=0.3, lease_s=1))
    try:
        job = await proc.service.submit(request(), ALICE)
        failed = await run_to_end(proc, job)
        assert failed.error is not None
        assert (failed.status, failed.error.code) == ("failed", "job_timeout")
        assert types(await proc.events(job.stream_id))[-1] == "error"
    finally:
        await proc.aclose()


# --- cancel -----------------------------------------------------------------------------------------------------


async def test_cancel_ends_a_running_job_and_its_stream(world: World, process: Process) -> None:
    """The job ends ``cancelled`` at once, its stream too; polling stops; one ``cancelled`` record; a second
    cancel answers the job as it is; another customer's cancel is a 404."""
    world.alpha.done_after = None
    job = await process.service.submit(request(), ALICE)
    process.worker.start()
    await until_running(process, job)
    with pytest.raises(NotFoundError):
        await process.service.cancel(BOB, job.id)
    cancelled = await process.service.cancel(ALICE, job.id)
    assert cancelled.status == "cancelled"
    events = await process.events(job.stream_id)
    assert types(events)[-1] == "cancelled"
    polls = world.alpha.polls
    await asyncio.sleep(0.1)
    assert world.alpha.polls == polls
    assert process.worker.active == 0
    assert (await process.service.cancel(ALICE, job.id)).status == "cancelled"
    assert [r.outcome for r in world.usage.records if r.outcome != "done"] == ["cancelled"]


async def test_a_queued_job_can_be_cancelled_before_any_worker_saw_it(world: World, process: Process) -> None:
    """No worker runs: the job and its stream end ``cancelled`` and nothing reaches the vendor."""
    job = await process.service.submit(request(), ALICE)
    await process.service.cancel(ALICE, job.id)
    assert types(await process.events(job.stream_id)) == ["queued", "cancelled"]
    process.worker.start()
    await asyncio.sleep(0.05)
    assert world.alpha.submitted == []


# --- resumed elsewhere ------------------------------------------------------------------------------------------


async def test_a_stopped_worker_hands_its_job_over_on_a_new_stream(world: World, process: Process) -> None:
    """A worker that stops gives its lease up; the next process (its own memory log: the old stream is gone for it)
    resumes the job from the stored operation, on a new stream that names the previous one, and ends it ``done``.
    The vendor saw one submission."""
    world.alpha.done_after = None
    job = await process.service.submit(request(), ALICE)
    process.worker.start()
    await until_running(process, job)
    await process.worker.stop()
    old = await process.events(job.stream_id)
    assert (types(old)[-1], old[-1].payload["code"]) == ("error", "job_moved")
    world.alpha.done_after = world.alpha.polls + 2
    restarted = Process(world)
    try:
        done = await run_to_end(restarted, job)
        assert done.status == "succeeded"
        assert done.stream_id != job.stream_id
        assert done.claims == 2
        events = await restarted.events(done.stream_id)
        assert events[0].payload["previous_stream_id"] == job.stream_id
        assert events[0].payload["resumed"] is True
        assert types(events)[-1] == "done"
        assert len(world.alpha.submitted) == 1
    finally:
        await restarted.aclose()


async def test_a_dead_holders_job_is_taken_over_on_the_same_stream(world: World) -> None:
    """Two processes share a stream log (as with Redis). The first claims the job and dies (it never renews); once
    its lease lapsed the second takes the job over, fences the dead writer out of the same stream and finishes it:
    a reader of that one stream sees queued, the resumed progress, then done."""
    shared = InMemoryStreamLog()
    first, second = Process(world, shared), Process(world, shared)
    try:
        job = await first.service.submit(request(), ALICE)
        [held] = await world.jobs.claim_due("dead-worker", now=job.created_at, lease_s=0.2, limit=1)
        assert held.lease_owner == "dead-worker#1"
        await asyncio.sleep(0.25)
        done = await run_to_end(second, job)
        assert (done.status, done.stream_id, done.claims) == ("succeeded", job.stream_id, 2)
        events = await second.events(job.stream_id)
        assert types(events)[0] == "queued"
        assert types(events)[-1] == "done"
        assert any(e.payload.get("resumed") for e in events if e.type == "progress")
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_job_holds_a_slot_and_its_price_until_it_ends() -> None:
    """One job in flight and $5 a day: an 8 s job holds a slot and $3.20 while it runs, so a second submission is a
    429 before any vendor call; once a worker ends the job the hold is back and $3.20 is counted; a cancelled job
    gives its hold back and costs nothing."""
    gate = QuotaGate(InMemoryQuotaStore(), None, QuotaPolicy(Limits(concurrent_streams=1, daily_budget_usd=5.0)))
    world = World(ScriptedVideoProvider(name="alpha"), gate=gate)
    process = Process(world)
    try:
        job = await process.service.submit(request(duration_s=8), ALICE)
        held = await gate.usage(ALICE)
        assert (held.in_flight, held.held_usd, held.requests_this_minute) == (1, 3.2, 1)
        with pytest.raises(QuotaExceededError) as caught:
            await process.service.submit(request(duration_s=4), ALICE)
        assert caught.value.context["limit"] == "concurrent_streams"
        assert len(world.alpha.submitted) == 0
        await run_to_end(process, job)
        after = await gate.usage(ALICE)
        assert (after.in_flight, after.held_usd, after.spent_today_usd) == (0, 0.0, 3.2)
        with pytest.raises(QuotaExceededError) as budget:  # $3.20 + $3.20 > $5
            await process.service.submit(request(duration_s=8), ALICE)
        assert budget.value.code == "daily_budget_exceeded"
        queued = await process.service.submit(request(duration_s=4), ALICE)  # $1.60 fits
        await process.service.cancel(ALICE, queued.id)
        assert (await gate.usage(ALICE)).in_flight == 0
    finally:
        await process.aclose()
        await gate.aclose()


async def test_a_keys_video_spend_is_counted_for_it_though_a_worker_ran_the_job() -> None:
    """A key with a $4 budget submits an 8 s job ($3.20); the worker (no caller bound) ends it and the spend counts
    for the key, so the key's next $3.20 job is refused for the key while the customer has no limit."""
    gate = QuotaGate(InMemoryQuotaStore(), None, QuotaPolicy(Limits()))
    world = World(ScriptedVideoProvider(name="alpha"), gate=gate)
    process = Process(world)
    key = AuthContext(ALICE, key_id="k1", key_limits=Limits(daily_budget_usd=4.0))

    async def submit() -> VideoJob:
        bind_principal(key)
        return await process.service.submit(request(duration_s=8), ALICE)

    try:
        job = await asyncio.create_task(submit())
        assert job.api_key_id == "k1"
        await run_to_end(process, job)
        assert (await gate.usage(ALICE)).spent_today_usd == 3.2
        with pytest.raises(QuotaExceededError) as caught:
            await asyncio.create_task(submit())
        assert (caught.value.code, caught.value.context["scope"]) == ("daily_budget_exceeded", "key")
    finally:
        await process.aclose()
        await gate.aclose()
