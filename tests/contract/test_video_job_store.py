"""The VideoJobStore contract, run against the SQLAlchemy store on SQLite and PostgreSQL and against the in-memory
fake (so it cannot drift): ownership, pages, exclusive claims, lease expiry and takeover, writes fenced by the lease."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.migrator import AlembicSchemaMigrator
from adapters.sqlalchemy.video_jobs import SqlAlchemyVideoJobStore
from domain.errors import DatabaseError, NotFoundError
from domain.types import CustomerId, StreamId
from domain.video import JobError, VideoJob, VideoOperation, VideoRequest, VideoResult, new_video_job_id
from ports.video import VideoJobStore
from tests.fakes.video import InMemoryVideoJobStore
from tests.integration.test_ledger_backends import BACKENDS, Backend, backend_engine

ALICE: Final = CustomerId("alice")
BOB: Final = CustomerId("bob")
T0: Final = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEASE_S: Final = 30.0


def make_job(owner: CustomerId = ALICE, *, at: datetime = T0, prompt: str = "a paper boat") -> VideoJob:
    request = VideoRequest(model="fake/video", prompt=prompt, duration_s=4, metadata={"fake_finish_s": "2"})
    return VideoJob(
        id=new_video_job_id(),
        owner=owner,
        model="fake/video",
        request=request,
        stream_id=StreamId("st_1"),
        created_at=at,
        updated_at=at,
        due_at=at,
    )


@pytest.fixture(params=BACKENDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    backend: Backend = request.param
    async with backend_engine(backend, tmp_path) as engine:
        await AlembicSchemaMigrator(engine).upgrade()
        yield engine


@pytest.fixture(params=[*BACKENDS, "fake"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VideoJobStore]:
    if request.param == "fake":
        yield InMemoryVideoJobStore()
        return
    async with backend_engine(request.param, tmp_path) as engine:
        await AlembicSchemaMigrator(engine).upgrade()
        yield SqlAlchemyVideoJobStore(engine)


async def test_a_job_round_trips_and_belongs_to_its_owner(store: VideoJobStore) -> None:
    """What is stored comes back equal for its owner; another customer gets not_found, as for an unknown id."""
    job = make_job()
    await store.create(job)
    assert await store.get(ALICE, job.id) == job
    with pytest.raises(NotFoundError):
        await store.get(BOB, job.id)
    with pytest.raises(NotFoundError):
        await store.get(ALICE, "vid_missing")


async def test_list_pages_newest_first_with_the_total(store: VideoJobStore) -> None:
    """A page of the owner's jobs, newest first; the total counts only theirs."""
    jobs = [make_job(at=T0 + timedelta(seconds=i)) for i in range(5)]
    for job in jobs:
        await store.create(job)
    await store.create(make_job(BOB))
    page, total = await store.page(ALICE, limit=2, offset=1)
    assert total == 5
    assert [j.id for j in page] == [jobs[3].id, jobs[2].id]


async def test_a_claimed_job_is_leased_until_its_lease_lapses(store: VideoJobStore) -> None:
    """A due job goes to one claimer; others get nothing while the lease runs, and take it over once it lapsed."""
    job = make_job()
    await store.create(job)
    [first] = await store.claim_due("w1", now=T0, lease_s=LEASE_S, limit=10)
    assert (first.id, first.lease_owner, first.claims) == (job.id, "w1#1", 1)
    assert first.lease_until == T0 + timedelta(seconds=LEASE_S)
    assert await store.claim_due("w2", now=T0 + timedelta(seconds=LEASE_S - 1), lease_s=LEASE_S, limit=10) == []
    later = T0 + timedelta(seconds=LEASE_S + 1)
    [taken] = await store.claim_due("w2", now=later, lease_s=LEASE_S, limit=10)
    assert (taken.lease_owner, taken.claims) == ("w2#2", 2)
    # The first holder is fenced out: its writes change nothing.
    assert await store.renew(job.id, "w1#1", now=later, lease_s=LEASE_S, progress=0.5, due_at=later) is None
    failed = await store.fail(job.id, "w1#1", error=JobError("provider_error", "boom"), now=later)
    assert failed is None
    assert (await store.get(ALICE, job.id)).status == "queued"


async def test_jobs_not_yet_due_are_not_claimed(store: VideoJobStore) -> None:
    """``due_at`` in the future keeps a job from claimers until then."""
    job = make_job(at=T0 + timedelta(seconds=60))
    await store.create(job)
    assert await store.claim_due("w1", now=T0, lease_s=LEASE_S, limit=10) == []
    assert len(await store.claim_due("w1", now=T0 + timedelta(seconds=60), lease_s=LEASE_S, limit=10)) == 1


async def test_the_holder_moves_the_job_to_its_end(store: VideoJobStore) -> None:
    """start, renew, set_stream and complete by the holder; a finished job is claimed by nobody."""
    job = make_job()
    await store.create(job)
    [held] = await store.claim_due("w1", now=T0, lease_s=LEASE_S, limit=1)
    holder = held.lease_owner
    assert holder is not None
    operation = VideoOperation("ops/1", {"started": 1.5, "prompt": "a paper boat"})
    started = await store.start(job.id, holder, operation=operation, served_by="fake/video", now=T0)
    assert started is not None
    assert (started.status, started.operation, started.served_by, started.started_at) == (
        "running",
        operation,
        "fake/video",
        T0,
    )
    soon = T0 + timedelta(seconds=5)
    renewed = await store.renew(job.id, holder, now=soon, lease_s=LEASE_S, progress=0.4, due_at=soon)
    assert renewed is not None
    assert (renewed.progress, renewed.lease_until, renewed.due_at) == (0.4, soon + timedelta(seconds=LEASE_S), soon)
    moved = await store.set_stream(job.id, holder, StreamId("st_2"))
    assert moved is not None
    assert moved.stream_id == "st_2"
    result = VideoResult("md_1", f"/api/v1/videos/{job.id}/content", 4.0, 426, 240)
    done = await store.complete(job.id, holder, result=result, now=soon)
    assert done is not None
    assert (done.status, done.result, done.lease_owner, done.finished_at) == ("succeeded", result, None, soon)
    assert await store.claim_due("w2", now=soon + timedelta(hours=1), lease_s=LEASE_S, limit=10) == []
    assert await store.complete(job.id, holder, result=result, now=soon) is None  # ended: nothing more


async def test_cancel_wins_over_the_holder_and_is_idempotent(store: VideoJobStore) -> None:
    """The owner's cancel ends a held job (the holder's next write changes nothing); a second cancel says so."""
    job = make_job()
    await store.create(job)
    [held] = await store.claim_due("w1", now=T0, lease_s=LEASE_S, limit=1)
    cancelled, changed = await store.cancel(ALICE, job.id, now=T0)
    assert (cancelled.status, changed, cancelled.finished_at) == ("cancelled", True, T0)
    assert held.lease_owner is not None
    assert await store.renew(job.id, held.lease_owner, now=T0, lease_s=LEASE_S, progress=None, due_at=T0) is None
    again, changed = await store.cancel(ALICE, job.id, now=T0)
    assert (again.status, changed) == ("cancelled", False)
    with pytest.raises(NotFoundError):
        await store.cancel(BOB, job.id, now=T0)


async def test_release_lets_another_worker_claim_at_once(store: VideoJobStore) -> None:
    """A stopping worker gives its lease up: the job is claimable before the lease would have lapsed."""
    job = make_job()
    await store.create(job)
    [held] = await store.claim_due("w1", now=T0, lease_s=LEASE_S, limit=1)
    assert held.lease_owner is not None
    await store.release(job.id, held.lease_owner)
    [taken] = await store.claim_due("w2", now=T0, lease_s=LEASE_S, limit=1)
    assert taken.lease_owner == "w2#2"


async def test_two_concurrent_claimers_never_get_the_same_job(engine: AsyncEngine) -> None:
    """Two claimers on their own connections claim in parallel: every job goes to exactly one of them."""
    jobs = [make_job(at=T0 + timedelta(milliseconds=i)) for i in range(24)]
    first = SqlAlchemyVideoJobStore(engine)
    for job in jobs:
        await first.create(job)
    second = SqlAlchemyVideoJobStore(engine)  # each claim runs on its own pooled connection
    now = T0 + timedelta(seconds=1)

    async def drain(store: SqlAlchemyVideoJobStore, worker: str) -> list[str]:
        got: list[str] = []
        for _ in range(40):
            try:
                batch = await store.claim_due(worker, now=now, lease_s=LEASE_S, limit=3)
            except DatabaseError:  # SQLite's write lock may refuse a pass: the worker's next tick retries
                batch = []
            got += [job.id for job in batch]
            await asyncio.sleep(0)
        return got

    one, two = await asyncio.gather(drain(first, "w1"), drain(second, "w2"))
    assert set(one).isdisjoint(two)
    assert sorted(one + two) == sorted(job.id for job in jobs)
    if engine.dialect.name == "postgresql":
        assert one, "SKIP LOCKED: neither claimer waits for the other, both make progress"
        assert two
