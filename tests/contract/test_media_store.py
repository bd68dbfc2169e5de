"""The MediaStore contract, run against the file store (in a temporary folder) and the S3 store (against a local S3
server, moto's server mode) so they cannot drift."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Final

import attrs
import pytest

from adapters.files.media_store import FileMediaStore
from adapters.s3.media_store import s3_media_store
from domain.errors import MediaTooLargeError, NotFoundError, ValidationError
from domain.media import MediaId, MediaObject
from domain.types import CustomerId
from ports.media import MediaStore
from settings.model import MediaSettings
from settings.secret import Secret
from tests.fakes.clock import FakeClock
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, local_s3, unique_bucket

ALICE: Final = CustomerId("alice")
BOB: Final = CustomerId("bob")
TTL_S: Final = 600.0
MAX_BYTES: Final = 6 * 1024 * 1024
DATA: Final = b"0123456789abcdefghij"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """One local S3 server for the module (each test gets its own bucket)."""
    with local_s3() as endpoint:
        yield endpoint


def s3_settings(endpoint: str, **changes: Any) -> MediaSettings:
    """Media settings for the local S3 server with a fresh bucket."""
    base = MediaSettings(
        backend="s3",
        ttl_s=TTL_S,
        max_bytes=MAX_BYTES,
        s3_bucket=unique_bucket(),
        s3_endpoint_url=endpoint,
        s3_region=REGION,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=Secret(SECRET_KEY),
    )
    return attrs.evolve(base, **changes)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_800_000_000.0)


@pytest.fixture(params=["files", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[MediaStore]:
    if request.param == "files":
        yield FileMediaStore(tmp_path / "media", ttl_s=TTL_S, max_bytes=MAX_BYTES, clock=clock)
        return
    endpoint: str = request.getfixturevalue("s3_endpoint")
    async with s3_media_store(s3_settings(endpoint), clock=clock) as s3_store:
        yield s3_store


async def test_put_then_head_describes_the_object(store: MediaStore, clock: FakeClock) -> None:
    """A put answers the object's description, and head answers the same one."""
    media = await store.put(ALICE, DATA, "image/png", kind="image")
    assert media.id.startswith("md_")
    assert (media.owner, media.content_type, media.size, media.kind) == (ALICE, "image/png", len(DATA), "image")
    assert (media.created_at, media.expires_at) == (clock.now, clock.now + TTL_S)
    assert len(media.etag) > 2
    assert media.etag[0] == media.etag[-1] == '"'
    assert await store.head(ALICE, media.id) == media


async def test_each_put_gets_a_new_id_and_etags_follow_the_bytes(store: MediaStore) -> None:
    """Ids never repeat; equal bytes have equal ETags and different bytes different ones."""
    first = await store.put(ALICE, DATA, "image/png", kind="image")
    again = await store.put(ALICE, DATA, "image/png", kind="image")
    other = await store.put(ALICE, DATA + b"!", "image/png", kind="image")
    assert len({first.id, again.id, other.id}) == 3
    assert first.etag == again.etag != other.etag


async def test_read_returns_the_bytes_and_inclusive_ranges(store: MediaStore) -> None:
    """The whole object by default; start..end inclusive; an end past the object is clamped."""
    media = await store.put(ALICE, DATA, "application/octet-stream", kind="audio")
    assert await store.read(ALICE, media.id) == DATA
    assert await store.read(ALICE, media.id, 2, 5) == DATA[2:6]
    assert await store.read(ALICE, media.id, 3, 3) == DATA[3:4]
    assert await store.read(ALICE, media.id, 15) == DATA[15:]
    assert await store.read(ALICE, media.id, 15, 10_000) == DATA[15:]
    assert await store.read(ALICE, media.id, len(DATA) - 1) == DATA[-1:]


async def test_a_range_past_the_end_or_backwards_is_a_validation_error(store: MediaStore) -> None:
    """Ranges the object cannot satisfy name the ``range`` field."""
    media = await store.put(ALICE, DATA, "image/png", kind="image")
    for start, end in ((len(DATA), None), (len(DATA) + 5, len(DATA) + 9), (5, 4), (-1, 3)):
        with pytest.raises(ValidationError) as caught:
            await store.read(ALICE, media.id, start, end)
        assert caught.value.field == "range"


async def test_an_empty_object_reads_as_empty(store: MediaStore) -> None:
    """Zero bytes are an object too."""
    media = await store.put(ALICE, b"", "text/plain", kind="text")
    assert media.size == 0
    assert (await store.head(ALICE, media.id)).size == 0
    assert await store.read(ALICE, media.id) == b""


async def test_another_customers_id_is_not_found(store: MediaStore) -> None:
    """Bob cannot see, read or delete Alice's object: the same not_found as an unknown id."""
    media = await store.put(ALICE, DATA, "image/png", kind="image")
    with pytest.raises(NotFoundError):
        await store.head(BOB, media.id)
    with pytest.raises(NotFoundError):
        await store.read(BOB, media.id)
    await store.delete(BOB, media.id)
    assert await store.read(ALICE, media.id) == DATA


@pytest.mark.parametrize(
    "media_id", ["md_AAAAAAAAAAAAAAAAAAAAAA", "../../etc/passwd", "md_../../x", "", "md_" + "a" * 2000]
)
async def test_unknown_and_malformed_ids_are_not_found(store: MediaStore, media_id: str) -> None:
    """Ids that were never issued (or could not be) are not found, never a path or a backend error."""
    with pytest.raises(NotFoundError):
        await store.head(ALICE, MediaId(media_id))
    with pytest.raises(NotFoundError):
        await store.read(ALICE, MediaId(media_id))
    await store.delete(ALICE, MediaId(media_id))


async def test_delete_forgets_the_object_and_is_idempotent(store: MediaStore) -> None:
    """After a delete the id is not found; deleting again is fine."""
    media = await store.put(ALICE, DATA, "image/png", kind="image")
    await store.delete(ALICE, media.id)
    with pytest.raises(NotFoundError):
        await store.head(ALICE, media.id)
    with pytest.raises(NotFoundError):
        await store.read(ALICE, media.id)
    await store.delete(ALICE, media.id)


async def test_objects_expire_after_the_time_to_live(store: MediaStore, clock: FakeClock) -> None:
    """Alive until ``expires_at``, not found from then on (and deleted, so it stays gone)."""
    media = await store.put(ALICE, DATA, "image/png", kind="image")
    clock.advance(TTL_S - 1)
    assert (await store.head(ALICE, media.id)).id == media.id
    clock.advance(1)
    with pytest.raises(NotFoundError):
        await store.head(ALICE, media.id)
    with pytest.raises(NotFoundError):
        await store.read(ALICE, media.id)
    clock.now -= 10  # even if the clock stepped back, the expired object was removed when met
    with pytest.raises(NotFoundError):
        await store.head(ALICE, media.id)


async def test_a_large_object_round_trips_and_ranges_read_inside_it(store: MediaStore) -> None:
    """Megabytes in, the same bytes out, and a range in the middle reads only that slice."""
    data = os.urandom(5 * 1024 * 1024 + 123)
    media = await store.put(ALICE, data, "video/mp4", kind="video")
    assert media.size == len(data)
    assert await store.read(ALICE, media.id) == data
    assert await store.read(ALICE, media.id, 3_000_000, 3_000_099) == data[3_000_000:3_000_100]
    assert await store.read(ALICE, media.id, len(data) - 7) == data[-7:]


async def test_objects_over_max_bytes_are_refused(store: MediaStore) -> None:
    """One byte over ``media.max_bytes`` is refused before anything is stored."""
    with pytest.raises(MediaTooLargeError):
        await store.put(ALICE, b"\0" * (MAX_BYTES + 1), "image/png", kind="image")


async def test_kind_and_owner_survive_any_characters(store: MediaStore) -> None:
    """Owners are free-form customer ids (JWT subjects): spaces, slashes and non-ASCII are kept exactly."""
    owner = CustomerId("ünïcode / süb:42 %20")
    media = await store.put(owner, DATA, "image/webp", kind="image")
    described = await store.head(owner, media.id)
    assert isinstance(described, MediaObject)
    assert (described.owner, described.kind, described.content_type) == (owner, "image", "image/webp")
    with pytest.raises(NotFoundError):
        await store.head(CustomerId("ünïcode / süb:42 "), media.id)
