"""Driven adapter: the embedded MediaStore, one file of bytes and one JSON sidecar per object under a directory.

Layout: ``<root>/<id>.bin`` and ``<root>/<id>.json``. The sidecar is written last and is the object's commit point:
bytes without a sidecar (an interrupted put) are invisible, and the sweep removes them. Each file is written to a
temporary name in the same directory and renamed into place, so a reader never sees half an object.

An object past its ``expires_at`` answers ``NotFoundError`` and is deleted on the spot. The sweep removes the expired
objects nobody asked for; ``put`` runs it at most once per ``sweep_interval_s``, and since a put is the only way the
directory grows, it holds at most what one time to live (plus one interval) of puts wrote. File I/O runs in worker
threads (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from domain.errors import MediaTooLargeError, NotFoundError, ServiceUnavailableError, ValidationError
from domain.media import MediaId, MediaObject, new_media_id
from domain.types import CustomerId

__all__ = ["FileMediaStore"]

T = TypeVar("T")

# new_media_id() makes "md_" + 22 URL-safe characters; anything else is refused before it can name a path.
_ID: Final = re.compile(r"md_[A-Za-z0-9_-]{16,64}")
_ORPHAN_GRACE_S: Final = 300.0
"""A temporary file or sidecar-less bytes file older than this (file mtime) is left over from an interrupted put."""


class FileMediaStore:
    """Media under ``root``, expiring ``ttl_s`` after their put (by ``clock``, wall-clock seconds)."""

    def __init__(
        self,
        root: Path,
        *,
        ttl_s: float,
        max_bytes: int,
        sweep_interval_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._root = root
        self._ttl_s = ttl_s
        self._max_bytes = max_bytes
        self._sweep_interval_s = sweep_interval_s
        self._clock = clock
        self._last_sweep = float("-inf")
        self._sweeping = False

    async def put(self, owner: CustomerId, data: bytes, content_type: str, *, kind: str) -> MediaObject:
        """Write the bytes then the sidecar (each atomically); sweep expired objects when one is due."""
        if len(data) > self._max_bytes:
            raise MediaTooLargeError(len(data), self._max_bytes)
        now = self._clock()
        media = await _in_thread(self._write, owner, data, content_type, kind, now)
        if now - self._last_sweep >= self._sweep_interval_s and not self._sweeping:
            # The object is stored whatever happens here; a sweep that failed is tried again an interval later.
            with contextlib.suppress(OSError):
                await self.sweep()
        return media

    async def head(self, owner: CustomerId, media_id: MediaId) -> MediaObject:
        """The sidecar of a live object of ``owner``; ``NotFoundError`` otherwise (an expired one is deleted)."""
        return await _in_thread(self._live, owner, media_id)

    async def read(self, owner: CustomerId, media_id: MediaId, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start``..``end`` inclusive (``end`` past the object is clamped, as HTTP ranges are)."""
        return await _in_thread(self._read, owner, media_id, start, end)

    async def delete(self, owner: CustomerId, media_id: MediaId) -> None:
        """Remove ``owner``'s object; unknown, expired and other customers' ids are a no-op."""
        with contextlib.suppress(NotFoundError):
            media = await self.head(owner, media_id)
            await _in_thread(self._remove, media.id)

    async def sweep(self) -> int:
        """Remove expired objects and leftovers of interrupted puts; the number of objects removed."""
        self._sweeping = True
        try:
            return await asyncio.to_thread(self._sweep, self._clock())
        finally:
            self._sweeping = False
            self._last_sweep = self._clock()

    # Blocking from here on: each runs in a worker thread.
    def _paths(self, media_id: str) -> tuple[Path, Path]:
        return self._root / f"{media_id}.bin", self._root / f"{media_id}.json"

    def _write(self, owner: CustomerId, data: bytes, content_type: str, kind: str, now: float) -> MediaObject:
        media = MediaObject(
            id=new_media_id(),
            owner=owner,
            content_type=content_type,
            size=len(data),
            etag=f'"{hashlib.sha256(data).hexdigest()[:32]}"',  # here, off the loop: megabytes take milliseconds
            created_at=now,
            expires_at=now + self._ttl_s,
            kind=kind,
        )
        self._root.mkdir(parents=True, exist_ok=True)
        bin_path, meta_path = self._paths(media.id)
        _write_atomically(bin_path, data)
        _write_atomically(meta_path, json.dumps(_to_json(media)).encode())
        return media

    def _live(self, owner: CustomerId, media_id: MediaId) -> MediaObject:
        media = self._load(media_id) if _ID.fullmatch(media_id) else None
        if media is None or media.owner != owner:
            raise NotFoundError("media not found", context={"media_id": media_id})
        if media.expires_at is not None and media.expires_at <= self._clock():
            with contextlib.suppress(OSError):  # gone for the caller either way; the sweep retries the files
                self._remove(media.id)
            raise NotFoundError("media not found", context={"media_id": media_id})
        return media

    def _load(self, media_id: str) -> MediaObject | None:
        try:
            return _from_json(json.loads(self._paths(media_id)[1].read_bytes()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):  # a damaged sidecar: the object is lost, the sweep clears it
            return None

    def _read(self, owner: CustomerId, media_id: MediaId, start: int, end: int | None) -> bytes:
        media = self._live(owner, media_id)
        stop = _stop_of(start, end, media.size)
        try:
            with self._paths(media.id)[0].open("rb") as handle:
                handle.seek(start)
                return handle.read(stop - start)
        except FileNotFoundError:  # deleted (or swept) between the sidecar read and here
            raise NotFoundError("media not found", context={"media_id": media_id}) from None

    def _remove(self, media_id: str) -> None:
        # The sidecar first: once it is gone the object is gone, whatever happens to the bytes after.
        bin_path, meta_path = self._paths(media_id)
        meta_path.unlink(missing_ok=True)
        bin_path.unlink(missing_ok=True)

    def _sweep(self, now: float) -> int:
        removed = 0
        try:
            entries = list(os.scandir(self._root))
        except FileNotFoundError:
            return 0
        names = {entry.name for entry in entries}
        stale_before = time.time() - _ORPHAN_GRACE_S  # file mtimes are real wall-clock time, whatever our clock
        for entry in entries:
            # Only names this store makes are touched: media.dir may be shared with other files.
            if entry.name.startswith(".md_") and entry.name.endswith(".tmp"):
                if _older(entry, stale_before):
                    Path(entry.path).unlink(missing_ok=True)
                continue
            stem, _, suffix = entry.name.rpartition(".")
            if not _ID.fullmatch(stem):
                continue
            if suffix == "json":
                media = self._load(stem)
                if media is None or (media.expires_at is not None and media.expires_at <= now):
                    self._remove(stem)
                    removed += 1
            elif suffix == "bin" and f"{stem}.json" not in names and _older(entry, stale_before):
                Path(entry.path).unlink(missing_ok=True)
        return removed


async def _in_thread(function: Callable[..., T], *args: object) -> T:
    """``function(*args)`` in a worker thread; an I/O failure (disk full, permissions) is the store's 503."""
    try:
        return await asyncio.to_thread(function, *args)
    except OSError as exc:
        raise ServiceUnavailableError("the media store could not read or write", context={"errno": exc.errno}) from exc


def _stop_of(start: int, end: int | None, size: int) -> int:
    """The exclusive end of the slice ``start``..``end`` (inclusive) of ``size`` bytes; ``ValidationError`` when the
    range is backwards or starts past the object (reading all of an empty object is fine)."""
    if start < 0 or (end is not None and end < start):
        raise ValidationError("range", f"invalid byte range {start}-{'' if end is None else end}")
    if start >= size and not (start == 0 and end is None):
        raise ValidationError("range", f"starts at byte {start}, past the object's {size} bytes")
    return size if end is None else min(end + 1, size)


def _older(entry: os.DirEntry[str], before: float) -> bool:
    try:
        return entry.stat().st_mtime < before
    except FileNotFoundError:
        return False


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _to_json(media: MediaObject) -> dict[str, Any]:
    return {
        "id": media.id,
        "owner": media.owner,
        "content_type": media.content_type,
        "size": media.size,
        "etag": media.etag,
        "created_at": media.created_at,
        "expires_at": media.expires_at,
        "kind": media.kind,
    }


def _from_json(raw: dict[str, Any]) -> MediaObject:
    expires_at = raw["expires_at"]
    return MediaObject(
        id=MediaId(str(raw["id"])),
        owner=CustomerId(str(raw["owner"])),
        content_type=str(raw["content_type"]),
        size=int(raw["size"]),
        etag=str(raw["etag"]),
        created_at=float(raw["created_at"]),
        expires_at=None if expires_at is None else float(expires_at),
        kind=str(raw["kind"]),
    )
