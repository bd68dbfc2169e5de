"""What each media store does beyond the shared contract: the file store's sweep and atomic layout, the S3 store's
bucket set-up, metadata and failure translation (against a local S3 server)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest
from aiobotocore.session import get_session

from adapters.files.media_store import FileMediaStore
from adapters.s3.media_store import s3_media_store
from domain.errors import NotFoundError, ServiceUnavailableError
from domain.media import MediaId
from domain.types import CustomerId
from settings.model import MediaSettings
from settings.secret import Secret
from tests.fakes.clock import FakeClock
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, local_s3, unique_bucket

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

ALICE: Final = CustomerId("alice")
TTL_S: Final = 600.0


# --- the file store ----------------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_800_000_000.0)


def _files(root: Path, clock: FakeClock) -> FileMediaStore:
    return FileMediaStore(root, ttl_s=TTL_S, max_bytes=1 << 20, sweep_interval_s=60.0, clock=clock)


def _listing(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir())


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


async def test_a_put_leaves_one_bytes_file_and_one_sidecar(tmp_path: Path, clock: FakeClock) -> None:
    """No temporary files remain; the sidecar holds the description, the bytes file the bytes."""
    media = await _files(tmp_path, clock).put(ALICE, b"png!", "image/png", kind="image")
    assert _listing(tmp_path) == [f"{media.id}.bin", f"{media.id}.json"]
    assert (tmp_path / f"{media.id}.bin").read_bytes() == b"png!"
    assert '"owner": "alice"' in (tmp_path / f"{media.id}.json").read_text()


async def test_bytes_without_a_sidecar_are_invisible(tmp_path: Path, clock: FakeClock) -> None:
    """The sidecar is the commit point: a put interrupted before it left nothing anyone can read."""
    store = _files(tmp_path, clock)
    media = await store.put(ALICE, b"png!", "image/png", kind="image")
    (tmp_path / f"{media.id}.json").unlink()
    with pytest.raises(NotFoundError):
        await store.read(ALICE, media.id)


async def test_a_damaged_sidecar_is_not_found_and_swept(tmp_path: Path, clock: FakeClock) -> None:
    """A sidecar that is not the JSON we wrote means the object is lost, not a 500."""
    store = _files(tmp_path, clock)
    media = await store.put(ALICE, b"png!", "image/png", kind="image")
    (tmp_path / f"{media.id}.json").write_text("{not json")
    with pytest.raises(NotFoundError):
        await store.head(ALICE, media.id)
    assert await store.sweep() == 1
    assert _listing(tmp_path) == []


async def test_puts_sweep_expired_objects_once_per_interval(tmp_path: Path, clock: FakeClock) -> None:
    """Expired objects nobody asks for are removed by a later put, but no more often than the sweep interval."""
    store = _files(tmp_path, clock)
    old = await store.put(ALICE, b"old", "image/png", kind="image")  # t=0: the first put sweeps (nothing yet)
    clock.advance(550)
    await store.put(ALICE, b"b", "image/png", kind="image")  # t=550: sweeps; `old` is still alive
    clock.advance(51)
    await store.put(ALICE, b"c", "image/png", kind="image")  # t=601: `old` expired, but the last sweep was 51 s ago
    assert (tmp_path / f"{old.id}.json").exists()
    clock.advance(10)
    await store.put(ALICE, b"d", "image/png", kind="image")  # t=611: 61 s since the last sweep: due
    assert not (tmp_path / f"{old.id}.json").exists()
    assert not (tmp_path / f"{old.id}.bin").exists()
    assert len(_listing(tmp_path)) == 6  # b, c and d remain


async def test_the_sweep_clears_leftovers_and_touches_nothing_else(tmp_path: Path, clock: FakeClock) -> None:
    """Stale temporary files and orphaned bytes go; fresh ones (a put in flight) and foreign files stay."""
    store = _files(tmp_path, clock)
    orphan = tmp_path / "md_AAAAAAAAAAAAAAAAAAAAAA.bin"
    temp = tmp_path / ".md_BBBBBBBBBBBBBBBBBBBBBB.bin.x1y2.tmp"
    in_flight = tmp_path / "md_CCCCCCCCCCCCCCCCCCCCCC.bin"
    foreign = [tmp_path / "notes.json", tmp_path / "backup.bin", tmp_path / ".cache.tmp"]
    for path in (orphan, temp, in_flight, *foreign):
        path.write_bytes(b"x")
    for path in (orphan, temp, *foreign):
        _age(path, 3600)
    await store.sweep()
    assert not orphan.exists()
    assert not temp.exists()
    assert in_flight.exists()
    assert all(path.exists() for path in foreign)


async def test_the_sweep_of_a_missing_directory_is_a_no_op(tmp_path: Path, clock: FakeClock) -> None:
    """Before the first put there is no directory, and nothing to fail on."""
    assert await _files(tmp_path / "not-yet", clock).sweep() == 0


async def test_an_unwritable_directory_is_service_unavailable(tmp_path: Path, clock: FakeClock) -> None:
    """A store that cannot write says so as a typed error (503), not an OSError (500)."""
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(ServiceUnavailableError):
        await _files(blocker / "media", clock).put(ALICE, b"x", "image/png", kind="image")


# --- the S3 store --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with local_s3() as endpoint:
        yield endpoint


def _s3_settings(endpoint: str, bucket: str, *, create: bool = True) -> MediaSettings:
    return MediaSettings(
        backend="s3",
        ttl_s=TTL_S,
        s3_bucket=bucket,
        s3_endpoint_url=endpoint,
        s3_region=REGION,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=Secret(SECRET_KEY),
        s3_prefix="gen/",
        s3_create_bucket=create,
    )


@pytest.fixture
async def raw_s3(s3_endpoint: str) -> AsyncIterator[S3Client]:
    """A plain SDK client on the same server, to look behind the store's back."""
    async with get_session().create_client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    ) as client:
        yield client


async def test_a_created_bucket_expires_the_prefix_by_lifecycle(s3_endpoint: str, raw_s3: S3Client) -> None:
    """The store creates a missing bucket with a rule expiring its prefix after the TTL rounded up to days."""
    bucket = unique_bucket()
    async with s3_media_store(_s3_settings(s3_endpoint, bucket)) as store:
        media = await store.put(ALICE, b"bytes", "image/png", kind="image")
        assert await store.ensure_bucket(REGION) is False  # exists now: left alone
    rules = (await raw_s3.get_bucket_lifecycle_configuration(Bucket=bucket))["Rules"]
    assert [(r["Filter"].get("Prefix"), r["Expiration"].get("Days"), r["Status"]) for r in rules] == [
        ("gen/", 1, "Enabled")
    ]
    stored = await raw_s3.head_object(Bucket=bucket, Key=f"gen/{media.id}")
    assert stored["ContentType"] == "image/png"
    assert stored["Metadata"]["owner"] == "alice"
    assert float(stored["Metadata"]["expires-at"]) == pytest.approx(media.expires_at)


async def test_an_object_not_written_by_the_store_is_not_found(s3_endpoint: str, raw_s3: S3Client) -> None:
    """A key under the prefix without the store's metadata belongs to nobody."""
    bucket = unique_bucket()
    async with s3_media_store(_s3_settings(s3_endpoint, bucket)) as store:
        await raw_s3.put_object(Bucket=bucket, Key="gen/md_DDDDDDDDDDDDDDDDDDDDDD", Body=b"stray")
        with pytest.raises(NotFoundError):
            await store.head(ALICE, MediaId("md_DDDDDDDDDDDDDDDDDDDDDD"))
        with pytest.raises(NotFoundError):
            await store.read(ALICE, MediaId("md_DDDDDDDDDDDDDDDDDDDDDD"))


async def test_a_missing_bucket_not_created_is_service_unavailable(s3_endpoint: str) -> None:
    """With ``s3_create_bucket = false`` a missing bucket is a 503 on use, never a 404 for the object."""
    async with s3_media_store(_s3_settings(s3_endpoint, unique_bucket(), create=False)) as store:
        with pytest.raises(ServiceUnavailableError):
            await store.put(ALICE, b"x", "image/png", kind="image")


async def test_an_unreachable_server_is_service_unavailable(tmp_path: Path) -> None:
    """Nothing listening at the endpoint: the start fails with a typed 503 error that names no URL."""
    from tests.support.server import free_port

    settings = _s3_settings(f"http://127.0.0.1:{free_port()}", unique_bucket())
    with pytest.raises(ServiceUnavailableError) as caught:
        async with s3_media_store(settings):
            pass
    assert "127.0.0.1" not in caught.value.message
    assert caught.value.context == {"operation": "head_bucket"}
