"""Driven adapter: MediaStore on S3 or any S3-compatible server, through aiobotocore (the AWS SDK's core, async).

One object per media id under ``prefix``; owner, kind and the creation and expiry times ride along as user metadata,
the content type as the object's own. Every answer is checked against the caller: another customer's object, or an
expired one, is the same ``NotFoundError`` as a missing key. Reads use S3 ranges, so a Range request fetches only
what it asks for. Expired objects are deleted when met; the rest go by the bucket's lifecycle rule, which this store
sets on a bucket it creates (S3 expires objects in whole days, so the rule is the time to live rounded up). On a bucket
made by someone else, its owner sets that rule.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, unquote

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from domain.errors import (
    ConfigurationError,
    MediaTooLargeError,
    NotFoundError,
    ServiceUnavailableError,
    ValidationError,
)
from domain.media import MediaId, MediaObject, new_media_id
from domain.types import CustomerId
from settings.model import MediaSettings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import GetObjectRequestTypeDef

__all__ = ["S3MediaStore", "s3_media_store"]

# The same id shape the file store accepts: a malformed id never reaches S3 (a 1 KiB+ key would be a 400 there).
_ID: Final = re.compile(r"md_[A-Za-z0-9_-]{16,64}")
_MISSING: Final = frozenset({"404", "NoSuchKey", "NotFound"})
_BAD_RANGE: Final = frozenset({"416", "InvalidRange"})
_DAY_S: Final = 86_400.0


class S3MediaStore:
    """Media in ``bucket`` under ``prefix``, expiring ``ttl_s`` after their put (by ``clock``, wall-clock seconds)."""

    def __init__(
        self,
        client: S3Client,
        *,
        bucket: str,
        prefix: str,
        ttl_s: float,
        max_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._max_bytes = max_bytes
        self._clock = clock

    async def put(self, owner: CustomerId, data: bytes, content_type: str, *, kind: str) -> MediaObject:
        """One PUT; the ETag is the one S3 gives the object."""
        if len(data) > self._max_bytes:
            raise MediaTooLargeError(len(data), self._max_bytes)
        media_id = new_media_id()
        now = self._clock()
        expires_at = now + self._ttl_s
        try:
            answer = await self._client.put_object(
                Bucket=self._bucket,
                Key=self._key(media_id),
                Body=data,
                ContentType=content_type,
                Metadata={
                    # User metadata travels as HTTP headers: ASCII only, hence the quoting of free-form values.
                    "owner": quote(owner, safe=""),
                    "kind": quote(kind, safe=""),
                    "created-at": repr(now),
                    "expires-at": repr(expires_at),
                },
            )
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("put_object") from exc
        return MediaObject(
            id=media_id,
            owner=owner,
            content_type=content_type,
            size=len(data),
            etag=answer["ETag"],
            created_at=now,
            expires_at=expires_at,
            kind=kind,
        )

    async def head(self, owner: CustomerId, media_id: MediaId) -> MediaObject:
        """HEAD the object and check it is ``owner``'s and alive."""
        self._check_id(media_id)
        try:
            answer = await self._client.head_object(Bucket=self._bucket, Key=self._key(media_id))
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, media_id, "head_object") from exc
        created_at, expires_at, kind = await self._alive_for(owner, media_id, answer.get("Metadata", {}))
        return MediaObject(
            id=media_id,
            owner=owner,
            content_type=answer.get("ContentType", "application/octet-stream"),
            size=answer["ContentLength"],
            etag=answer["ETag"],
            created_at=created_at,
            expires_at=expires_at,
            kind=kind,
        )

    async def read(self, owner: CustomerId, media_id: MediaId, start: int = 0, end: int | None = None) -> bytes:
        """One ranged GET; the object's metadata comes with it, so ownership costs no extra round trip."""
        self._check_id(media_id)
        if start < 0 or (end is not None and end < start):
            raise ValidationError("range", f"invalid byte range {start}-{'' if end is None else end}")
        # No Range header for the whole object: "bytes=0-" of an empty object is unsatisfiable to S3.
        request: GetObjectRequestTypeDef = {"Bucket": self._bucket, "Key": self._key(media_id)}
        if start != 0 or end is not None:
            request["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            answer = await self._client.get_object(**request)
            try:
                await self._alive_for(owner, media_id, answer.get("Metadata", {}))
                return await answer["Body"].read()
            finally:
                answer["Body"].close()
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, media_id, "get_object") from exc

    async def delete(self, owner: CustomerId, media_id: MediaId) -> None:
        """Delete ``owner``'s object; unknown, expired and other customers' ids are a no-op."""
        with contextlib.suppress(NotFoundError):
            await self.head(owner, media_id)
            await self._delete(media_id)

    async def ensure_bucket(self, region: str | None) -> bool:
        """Create the bucket (with a lifecycle rule expiring ``prefix``) unless it exists; True when created."""
        try:
            await self._client.head_bucket(Bucket=self._bucket)
            return False
        except ClientError as exc:
            if _code_of(exc) not in _MISSING | {"NoSuchBucket"}:
                raise _unavailable("head_bucket") from exc
        except BotoCoreError as exc:
            raise _unavailable("head_bucket") from exc
        try:
            if region and region != "us-east-1":  # us-east-1 refuses its own name as a location constraint
                await self._client.create_bucket(
                    Bucket=self._bucket,
                    CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                )
            else:
                await self._client.create_bucket(Bucket=self._bucket)
            await self._client.put_bucket_lifecycle_configuration(
                Bucket=self._bucket,
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": "switchyard-media-expiry",
                            "Filter": {"Prefix": self._prefix},
                            "Status": "Enabled",
                            "Expiration": {"Days": max(1, math.ceil(self._ttl_s / _DAY_S))},
                        }
                    ]
                },
            )
        except ClientError as exc:
            if _code_of(exc) == "BucketAlreadyOwnedByYou":  # another worker process created it a moment ago
                return False
            raise _unavailable("create_bucket") from exc
        except BotoCoreError as exc:
            raise _unavailable("create_bucket") from exc
        return True

    def _key(self, media_id: str) -> str:
        return f"{self._prefix}{media_id}"

    def _check_id(self, media_id: MediaId) -> None:
        if not _ID.fullmatch(media_id):
            raise NotFoundError("media not found", context={"media_id": media_id})

    async def _alive_for(
        self, owner: CustomerId, media_id: MediaId, metadata: Mapping[str, str]
    ) -> tuple[float, float, str]:
        """(created_at, expires_at, kind) of an object ``owner`` may see; ``NotFoundError`` otherwise."""
        try:
            stored_owner = unquote(metadata["owner"])
            created_at = float(metadata["created-at"])
            expires_at = float(metadata["expires-at"])
        except (KeyError, ValueError):  # not an object this store wrote
            raise NotFoundError("media not found", context={"media_id": media_id}) from None
        if stored_owner != owner:
            raise NotFoundError("media not found", context={"media_id": media_id})
        if expires_at <= self._clock():
            with contextlib.suppress(ServiceUnavailableError):
                await self._delete(media_id)
            raise NotFoundError("media not found", context={"media_id": media_id})
        return created_at, expires_at, unquote(metadata.get("kind", ""))

    async def _delete(self, media_id: str) -> None:
        try:
            await self._client.delete_object(Bucket=self._bucket, Key=self._key(media_id))
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("delete_object") from exc


@asynccontextmanager
async def s3_media_store(
    config: MediaSettings, *, clock: Callable[[], float] = time.time
) -> AsyncIterator[S3MediaStore]:
    """An ``S3MediaStore`` over one client, opened here and closed on exit; the bucket is created when missing and
    ``media.s3_create_bucket`` allows it (else a missing bucket surfaces on first use)."""
    if not config.s3_bucket:
        raise ConfigurationError("media.s3_bucket", "required when media.backend = s3 (SWITCHYARD_MEDIA_S3_BUCKET)")
    if (config.s3_access_key_id is None) != (config.s3_secret_access_key is None):
        raise ConfigurationError(
            "media.s3_access_key_id", "set it together with media.s3_secret_access_key, or neither (SDK chain)"
        )
    sdk_config = AioConfig(
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},
        # Self-hosted servers (MinIO, moto, Ceph) answer on one host name: address buckets by path there.
        s3={"addressing_style": "path" if config.s3_endpoint_url else "auto"},
    )
    async with get_session().create_client(
        "s3",
        region_name=config.s3_region,
        endpoint_url=config.s3_endpoint_url,
        aws_access_key_id=config.s3_access_key_id,
        aws_secret_access_key=(
            config.s3_secret_access_key.reveal() if config.s3_secret_access_key is not None else None
        ),
        config=sdk_config,
    ) as client:
        store = S3MediaStore(
            client,
            bucket=config.s3_bucket,
            prefix=config.s3_prefix,
            ttl_s=config.ttl_s,
            max_bytes=config.max_bytes,
            clock=clock,
        )
        if config.s3_create_bucket:
            await store.ensure_bucket(config.s3_region)
        yield store


def _code_of(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _translate(exc: BotoCoreError | ClientError, media_id: str, operation: str) -> Exception:
    if isinstance(exc, ClientError):
        code = _code_of(exc)
        if code in _MISSING:
            return NotFoundError("media not found", context={"media_id": media_id})
        if code in _BAD_RANGE:
            return ValidationError("range", "the byte range starts past the end of the object")
    return _unavailable(operation)


def _unavailable(operation: str) -> ServiceUnavailableError:
    # The SDK's message may quote the endpoint or the request: only the operation goes out.
    return ServiceUnavailableError("the media store did not answer", context={"operation": operation})
