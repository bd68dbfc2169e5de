"""Blueprint: ``GET /api/v1/media/<media_id>``, a stored media object's bytes for the customer who owns it.

It answers as a static file server does: ``ETag`` with ``If-None-Match`` (304); ``Accept-Ranges: bytes`` with one
range per request (``bytes=a-b``, ``a-``, ``-n``: 206 and ``Content-Range``; starting past the end: 416 and
``Content-Range: bytes */<size>``), guarded by ``If-Range``. A malformed or multi-range ``Range`` is ignored and the
whole object sent, as RFC 9110 allows. HEAD answers the headers alone without reading the bytes. Another customer's
id is a 404, exactly like an unknown or expired one.
"""

from __future__ import annotations

import re
import time
from typing import Final

from attrs import frozen
from dependency_injector.wiring import Provide, inject
from quart import Blueprint, Response, request

from domain.media import MediaId, MediaObject
from entrypoints.http.auth import current_auth
from entrypoints.http.envelope import ApiResponse, ErrorBody, current_meta
from entrypoints.http.openapi import documented
from entrypoints.http.serialization import json_response
from ports.media import MediaStore

__all__ = ["ByteRange", "RangeNotSatisfiable", "blueprint", "etag_matches", "requested_range"]

blueprint = Blueprint("media", __name__)
# One range of the bytes unit; 19 digits bound the numbers (int() refuses past ~4300, and no object is that big).
_ONE_RANGE: Final = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")
_DESCRIPTION: Final = (
    "The bytes with their Content-Type, Content-Length and ETag. `Range: bytes=a-b`, `a-` or `-n` answers 206 with "
    "Content-Range (one range per request; a malformed or multi-range header is ignored); a range starting past "
    "the end answers 416 with `Content-Range: bytes */<size>`. `If-None-Match` with the current ETag answers 304; "
    "`If-Range` keeps the range only while the ETag is unchanged. HEAD answers the headers alone."
)


@frozen
class ByteRange:
    """Bytes ``start`` to ``end`` inclusive, as ``Content-Range`` names them."""

    start: int
    end: int


class RangeNotSatisfiable(Exception):
    """The requested range starts past the end of the object (416)."""


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The one range ``header`` asks for, clamped to ``size``; ``None`` to send the whole object.

    Raises ``RangeNotSatisfiable`` for a range starting at or past ``size`` (or asking for the last 0 bytes)."""
    match = _ONE_RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:  # "-n": the last n bytes
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(0, size - length), size - 1) if size else None
    start = int(first)
    if last and int(last) < start:  # backwards: not a valid range, so ignored
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return ByteRange(start, min(int(last), size - 1) if last else size - 1)


def etag_matches(header: str | None, etag: str) -> bool:
    """Weak comparison, as ``If-None-Match`` uses: ``*`` or any listed tag equal to ``etag`` ignoring ``W/``."""
    if not header:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags


def _headers(media: MediaObject) -> dict[str, str]:
    remaining = 0 if media.expires_at is None else max(0, int(media.expires_at - time.time()))
    return {
        "ETag": media.etag,
        "Accept-Ranges": "bytes",
        # One customer's media: never in a shared cache, and not past its expiry in the browser's.
        "Cache-Control": f"private, max-age={remaining}",
        # The content type is the store's word for the bytes: no sniffing them into something else (HTML).
        "X-Content-Type-Options": "nosniff",
    }


def _unsatisfiable(media: MediaObject) -> Response:
    body = ApiResponse(
        code=416,
        success=False,
        message=f"the range starts past the end of the object ({media.size} bytes)",
        data=ErrorBody(error="range_not_satisfiable", type="RangeNotSatisfiable", context={"size": media.size}),
        meta=current_meta(),
    )
    return json_response(body, status=416, headers={**_headers(media), "Content-Range": f"bytes */{media.size}"})


@blueprint.get("/api/v1/media/<media_id>")
@inject
@documented(
    "A media object's bytes (yours only), with Range and conditional requests",
    tags=["media"],
    errors=(401, 404, 416),
    description=_DESCRIPTION,
    headers=("Range", "If-None-Match", "If-Range"),
)
async def media_bytes(media_id: str, store: MediaStore = Provide["media_store"]) -> Response:
    owner = current_auth().customer_id
    media = await store.head(owner, MediaId(media_id))
    headers = _headers(media)
    if etag_matches(request.headers.get("If-None-Match"), media.etag):
        response = Response(b"", status=304, headers=headers)
        del response.headers["Content-Length"]  # a 304 has no body; its length is not the object's
        return response
    if_range = request.headers.get("If-Range")
    try:
        # If-Range with anything but the current ETag (strong comparison; a date included) means "send it whole".
        wanted = requested_range(request.headers.get("Range"), media.size) if if_range in (None, media.etag) else None
    except RangeNotSatisfiable:
        return _unsatisfiable(media)
    status, start, end = (200, 0, None) if wanted is None else (206, wanted.start, wanted.end)
    length = media.size if wanted is None else wanted.end - wanted.start + 1
    if wanted is not None:
        headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{media.size}"
    data = b"" if request.method == "HEAD" else await store.read(owner, media.id, start, end)
    response = Response(data, status=status, headers=headers, content_type=media.content_type)
    response.content_length = length  # for HEAD too: the length a GET would send
    return response
