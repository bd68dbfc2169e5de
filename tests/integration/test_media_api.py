"""GET /api/v1/media/{id}: the owner's bytes with ETag, Range (206/416), conditional 304 and HEAD; 404 for others."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import attrs
import pytest
from quart.testing.connections import TestHTTPConnection
from quart.typing import TestClientProtocol
from werkzeug.datastructures import Headers

from container import Container
from domain.errors import ConfigurationError
from domain.media import MediaObject, media_path
from domain.types import CustomerId
from entrypoints.http.app import create_app
from ports.media import MediaStore
from settings import Secret
from tests.support.app import auth_headers, make_container, make_settings
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, local_s3, unique_bucket

DATA: Final = bytes(range(256)) * 4  # 1024 bytes, each offset recognisable


async def _store(container: Container) -> MediaStore:
    store: MediaStore = await container.media_store()  # type: ignore[misc]
    return store


async def _get(
    client: TestClientProtocol, media: MediaObject, subject: str = "alice", method: str = "GET", **headers: str
) -> tuple[int, Headers, bytes]:
    """Status, headers and body as the app sent them (the test client's Response would recount Content-Length from
    the body it got, which hides what a HEAD or a 304 really says)."""
    sent = {**auth_headers(subject), **{name.replace("_", "-"): value for name, value in headers.items()}}
    connection = client.request(media_path(media.id), method=method, headers=sent)
    assert isinstance(connection, TestHTTPConnection)
    async with connection:
        await connection.send_complete()
    assert connection.status_code is not None
    assert connection.headers is not None
    return connection.status_code, connection.headers, bytes(connection.response_data)


@pytest.fixture
async def media(app: Any, container: Container) -> MediaObject:
    """A PNG-typed object of alice's, put through the app's own store."""
    return await (await _store(container)).put(CustomerId("alice"), DATA, "image/png", kind="image")


async def test_get_answers_the_bytes_with_their_headers(client: TestClientProtocol, media: MediaObject) -> None:
    """200, the exact bytes, their type and length, the ETag, range support and a private cache policy."""
    status, headers, body = await _get(client, media)
    assert status == 200
    assert body == DATA
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Length"] == str(len(DATA))
    assert headers["ETag"] == media.etag == f'"{hashlib.sha256(DATA).hexdigest()[:32]}"'
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Cache-Control"].startswith("private, max-age=")
    assert 0 < int(headers["Cache-Control"].rsplit("=", 1)[1]) <= 86_400
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Range" not in headers


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-355", 100, 355),
        ("bytes=1000-", 1000, 1023),
        ("bytes=1000-5000", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=-5000", 0, 1023),
        ("bytes=1023-1023", 1023, 1023),
    ],
)
async def test_a_range_answers_206_with_that_slice(
    client: TestClientProtocol, media: MediaObject, header: str, start: int, end: int
) -> None:
    """One range, clamped to the object: 206, Content-Range and exactly those bytes."""
    status, headers, body = await _get(client, media, Range=header)
    assert status == 206
    assert headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert headers["Content-Length"] == str(end - start + 1)
    assert headers["Content-Type"] == "image/png"
    assert body == DATA[start : end + 1]


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
async def test_an_unsatisfiable_range_is_416_with_the_size(
    client: TestClientProtocol, media: MediaObject, header: str
) -> None:
    """A range past the end: 416, ``Content-Range: bytes */size``, an error envelope."""
    status, headers, body = await _get(client, media, Range=header)
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{len(DATA)}"
    assert b'"range_not_satisfiable"' in body


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-3", "bytes=a-b", "bytes=-", "0-5"])
async def test_a_range_that_is_not_one_valid_byte_range_is_ignored(
    client: TestClientProtocol, media: MediaObject, header: str
) -> None:
    """Several ranges, other units, backwards or garbage: the whole object, 200 (RFC 9110 lets a server ignore)."""
    status, headers, body = await _get(client, media, Range=header)
    assert status == 200
    assert body == DATA
    assert "Content-Range" not in headers


async def test_if_none_match_with_the_etag_is_304(client: TestClientProtocol, media: MediaObject) -> None:
    """The current ETag (listed, weak or ``*``) answers 304 with the ETag and no body; another tag answers 200."""
    for header in (media.etag, f'"other", {media.etag}', f"W/{media.etag}", "*"):
        status, headers, body = await _get(client, media, If_None_Match=header)
        assert (status, body) == (304, b""), header
        assert headers["ETag"] == media.etag
        assert "Content-Length" not in headers
    status, _headers, body = await _get(client, media, If_None_Match='"something-else"')
    assert (status, body) == (200, DATA)


async def test_if_range_keeps_the_range_only_for_the_current_etag(
    client: TestClientProtocol, media: MediaObject
) -> None:
    """A stale validator (or a date, or a weak tag) turns the range request into the whole object."""
    status, _headers, body = await _get(client, media, Range="bytes=0-3", If_Range=media.etag)
    assert (status, body) == (206, DATA[:4])
    for stale in ('"stale"', "Wed, 21 Oct 2015 07:28:00 GMT", f"W/{media.etag}"):
        status, _headers, body = await _get(client, media, Range="bytes=0-3", If_Range=stale)
        assert (status, body) == (200, DATA), stale


async def test_head_answers_the_headers_alone(client: TestClientProtocol, media: MediaObject) -> None:
    """HEAD: the GET's status and headers (a range's too), no body."""
    status, headers, body = await _get(client, media, method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == str(len(DATA))
    assert headers["ETag"] == media.etag
    status, headers, body = await _get(client, media, method="HEAD", Range="bytes=10-19")
    assert (status, body) == (206, b"")
    assert (headers["Content-Length"], headers["Content-Range"]) == ("10", f"bytes 10-19/{len(DATA)}")


async def test_another_customers_unknown_and_expired_ids_are_404(
    client: TestClientProtocol, container: Container, media: MediaObject
) -> None:
    """Bob gets alice's id as not found; so does an id never issued; neither says which."""
    bob = await client.get(media_path(media.id), headers=auth_headers("bob"))
    unknown = await client.get("/api/v1/media/md_AAAAAAAAAAAAAAAAAAAAAA", headers=auth_headers("alice"))
    malformed = await client.get("/api/v1/media/..%2F..%2Fetc%2Fpasswd", headers=auth_headers("alice"))
    for response in (bob, unknown, malformed):
        assert response.status_code == 404
        body = await response.get_json()
        assert (body["success"], body["data"]["error"]) == (False, "not_found")
    assert (await bob.get_json())["message"] == (await unknown.get_json())["message"]


async def test_without_a_token_it_is_401(client: TestClientProtocol, media: MediaObject) -> None:
    """Media are behind the same bearer auth as the rest of the API."""
    response = await client.get(media_path(media.id))
    assert response.status_code == 401


async def test_an_empty_object_is_served_and_its_ranges_refused(
    client: TestClientProtocol, container: Container
) -> None:
    """Zero bytes: 200 with Content-Length 0; any first-byte range is 416."""
    empty = await (await _store(container)).put(CustomerId("alice"), b"", "text/plain", kind="text")
    status, headers, body = await _get(client, empty)
    assert (status, body, headers["Content-Length"]) == (200, b"", "0")
    status, headers, _body = await _get(client, empty, Range="bytes=0-")
    assert (status, headers["Content-Range"]) == (416, "bytes */0")


async def test_the_route_is_in_the_openapi_document(client: TestClientProtocol) -> None:
    """Documented with its statuses and the headers it reads."""
    spec = await (await client.get("/openapi.json")).get_json()
    operation = spec["paths"]["/api/v1/media/{media_id}"]["get"]
    assert {"401", "404", "416"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} >= {"media_id", "Range", "If-None-Match", "If-Range"}


# --- the container's choice of backend -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with local_s3() as endpoint:
        yield endpoint


async def test_the_s3_backend_serves_through_the_same_route(tmp_path: Path, s3_endpoint: str) -> None:
    """``media.backend = s3``: the container opens the S3 store (creating its bucket) and the route serves ranges."""
    media_settings: dict[str, Any] = {
        "backend": "s3",
        "s3_bucket": unique_bucket(),
        "s3_endpoint_url": s3_endpoint,
        "s3_region": REGION,
        "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": Secret(SECRET_KEY),
    }
    container = make_container(make_settings(tmp_path, media=media_settings))
    app = create_app(container)
    async with app.test_app():
        store = await _store(container)
        assert type(store).__name__ == "S3MediaStore"
        media = await store.put(CustomerId("alice"), DATA, "audio/mpeg", kind="audio")
        client = app.test_client()
        status, headers, body = await _get(client, media, Range="bytes=-4")
        assert (status, body, headers["Content-Type"]) == (206, DATA[-4:], "audio/mpeg")
        status, _headers, _body = await _get(client, media, subject="bob")
        assert status == 404
    container.unwire()


async def test_the_files_backend_defaults_under_the_data_dir(tmp_path: Path) -> None:
    """``media.dir`` unset: objects land in ``<app.data_dir>/media``."""
    container = make_container(make_settings(tmp_path))
    app = create_app(container)
    async with app.test_app():
        media = await (await _store(container)).put(CustomerId("alice"), DATA, "image/png", kind="image")
    container.unwire()
    assert (tmp_path / "media" / f"{media.id}.bin").read_bytes() == DATA


@pytest.mark.parametrize(
    ("media_settings", "key"),
    [({"backend": "s3"}, "media.s3_bucket"), ({"ttl_s": 0.0}, "media.ttl_s"), ({"max_bytes": 0}, "media.max_bytes")],
)
async def test_a_bad_media_configuration_stops_the_start(
    tmp_path: Path, media_settings: dict[str, Any], key: str
) -> None:
    """An S3 backend without a bucket, or a non-positive bound, fails at start naming the setting."""
    settings = make_settings(tmp_path)
    container = make_container(attrs.evolve(settings, media=attrs.evolve(settings.media, **media_settings)))
    with pytest.raises(ConfigurationError) as caught:
        await container.media_store()  # type: ignore[misc]
    assert caught.value.key == key
