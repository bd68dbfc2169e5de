"""A real Hypercorn server serves media over real HTTP framing: Range, HEAD and 304 as a client library sees them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx

from adapters.files.media_store import FileMediaStore
from domain.media import media_path
from domain.types import CustomerId
from tests.support.app import auth_headers
from tests.support.server import running_server


def test_range_head_and_not_modified_over_the_wire(tmp_path: Path) -> None:
    """Bytes written to the server's media directory come back whole, by range, as HEAD and as 304."""
    data = os.urandom(300_000)
    media_dir = tmp_path / "media"
    # The same directory format the server's own store reads: a second store instance writes into it.
    writer = FileMediaStore(media_dir, ttl_s=600.0, max_bytes=1 << 20)
    media = asyncio.run(writer.put(CustomerId("alice"), data, "image/png", kind="image"))
    with running_server(tmp_path, {"SWITCHYARD_MEDIA_DIR": str(media_dir)}) as server:
        url = server.base_url + media_path(media.id)
        with httpx.Client(headers=auth_headers("alice"), timeout=10.0) as client:
            whole = client.get(url)
            assert (whole.status_code, whole.content, whole.headers["content-type"]) == (200, data, "image/png")
            part = client.get(url, headers={"Range": "bytes=1000-1999"})
            assert (part.status_code, part.content) == (206, data[1000:2000])
            assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
            head = client.head(url)
            assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", str(len(data)))
            cached = client.get(url, headers={"If-None-Match": whole.headers["etag"]})
            assert (cached.status_code, cached.content) == (304, b"")
            # The connection is still usable after the bodiless answers: their framing was right.
            again = client.get(url, headers={"Range": "bytes=-10"})
            assert (again.status_code, again.content) == (206, data[-10:])
            assert client.get(url, headers=auth_headers("bob")).status_code == 404
