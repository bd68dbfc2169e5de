"""Driven adapter: Veo video generation (google-genai ``client.aio``) implementation of the ``VideoProvider`` port.

google-genai 3.x generates videos in Vertex AI mode only (its Gemini API path raises before any request), as it does
Imagen: the provider uses ``vertex_client`` when given (a Vertex client, an API key alone being "express mode"),
else the shared client if it is in Vertex mode; otherwise the submission is refused here, before any request, as a
non-retryable ``ProviderError`` so a fallback can serve. The three steps of the port:

- ``submit``: ``models.generate_videos`` (``:predictLongRunning``), the prompt and optional first frame as the
  ``source``, duration, aspect ratio, resolution, seed, negative prompt and ``generate_audio`` as its config; the
  operation's name is all that is kept, so any process can poll it later;
- ``poll``: ``operations.get`` (``:fetchPredictOperation``); a finished operation with an ``error`` is a
  ``VideoOperationError``, one whose video was filtered (RAI) a ``ContentPolicyError``;
- ``fetch``: the finished operation once more: without an output bucket, Vertex returns the video inline
  (``bytesBase64Encoded``), so this *is* the download; a body cut short is a retryable ``ProviderError``. The MP4 is
  probed with PyAV for its length and size.

Veo reports no progress while it works (``progress`` stays unknown). The SDK client is shared with the vendor's
other providers and closed by the bundle.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable
from typing import Any, Final, TypeVar

import av
import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from adapters.gemini.errors import map_gemini_error, safe_reason
from adapters.gemini.vertex import AUTH_FAILURES, vertex_auth_error
from domain.catalog import ModelSpec
from domain.errors import ContentPolicyError, ProviderError
from domain.video import GeneratedVideo, VideoOperation, VideoOperationError, VideoPoll, VideoRequest

__all__ = ["GeminiVideoProvider"]

T = TypeVar("T")

#: What may escape the SDK during a call: its own errors, transport errors it leaves unwrapped, a body that is not
#: the JSON its models expect (a download cut short included).
_VENDOR_FAILURES: Final[tuple[type[Exception], ...]] = (
    genai_errors.APIError,
    httpx2.HTTPError,
    TimeoutError,
    ValueError,
)
#: Video heights by resolution, for when the MP4 cannot be probed.
_HEIGHTS: Final = {"720p": 720, "1080p": 1080}


class GeminiVideoProvider:
    """``VideoProvider`` over a Vertex-mode ``genai.Client`` (its ``aio`` side)."""

    def __init__(
        self, client: genai.Client, *, name: str = "gemini", vertex_client: genai.Client | None = None
    ) -> None:
        self._name = name
        # Veo needs Vertex AI mode; a vendor whose shared client speaks the Gemini API may hand a second one.
        self._client = vertex_client or client

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def submit(self, request: VideoRequest, model: ModelSpec) -> VideoOperation:
        """Start the operation; only its name is kept."""
        if not self._client.vertexai:
            raise ProviderError(
                self._name,
                f"{model.qualified_id} needs a Vertex AI client: google-genai generates videos in Vertex AI mode only",
                context={"model": model.qualified_id},
            )
        frame = request.first_frame
        source = types.GenerateVideosSource(
            prompt=request.prompt,
            image=types.Image(image_bytes=frame.data, mime_type=frame.mime_type) if frame is not None else None,
        )
        config = types.GenerateVideosConfig(
            number_of_videos=1,
            duration_seconds=request.duration_s,
            aspect_ratio=request.aspect_ratio,
            resolution=request.resolution,
            seed=request.seed,
            negative_prompt=request.negative_prompt,
            generate_audio=request.audio,
        )
        operation = await self._call(
            self._client.aio.models.generate_videos(model=model.wire_name, source=source, config=config)
        )
        if not operation.name:
            raise ProviderError(self._name, f"{self._name} answered without an operation name", retryable=True)
        return VideoOperation(operation.name, {"duration_s": request.duration_s, "resolution": request.resolution})

    async def poll(self, operation: VideoOperation, model: ModelSpec) -> VideoPoll:
        """Whether the operation is done (a failed or filtered one raises)."""
        current = await self._operation(operation)
        if not current.done:
            return VideoPoll(False, None)
        self._videos(current)  # a failure shows now, not at the download
        return VideoPoll(True, 1.0)

    async def fetch(self, operation: VideoOperation, model: ModelSpec) -> GeneratedVideo:
        """The finished operation's video (inline in the operation, without an output bucket)."""
        current = await self._operation(operation)
        if not current.done:
            raise ProviderError(self._name, f"{self._name}: the video is not ready yet", retryable=True)
        video = self._videos(current)[0]
        data = video.video_bytes
        if not data:
            raise ProviderError(
                self._name,
                f"{self._name} kept the video in a bucket ({video.uri or 'no uri'}), not inline",
                context={"operation": operation.name},
            )
        facts = await asyncio.to_thread(_probe, data)
        duration, width, height = facts if facts is not None else _declared(operation)
        return GeneratedVideo(data, video.mime_type or "video/mp4", duration, width, height)

    async def _operation(self, operation: VideoOperation) -> types.GenerateVideosOperation:
        handle = types.GenerateVideosOperation.model_validate({"name": operation.name})
        return await self._call(self._client.aio.operations.get(handle))

    def _videos(self, operation: types.GenerateVideosOperation) -> list[types.Video]:
        error = operation.error
        if error:
            message = safe_reason(error.get("message"), "the video generation failed")
            raise VideoOperationError(
                self._name,
                f"{self._name}: {message}",
                context={"operation": operation.name, "vendor_code": error.get("code")},
            )
        result = operation.result or operation.response
        videos = [g.video for g in (result.generated_videos if result else None) or () if g.video is not None]
        if not videos:
            reasons = (result.rai_media_filtered_reasons if result else None) or []
            if result is not None and (result.rai_media_filtered_count or reasons):
                raise ContentPolicyError(self._name, safe_reason(reasons[0] if reasons else None))
            raise ProviderError(self._name, f"{self._name} finished the operation without a video")
        return videos

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except _VENDOR_FAILURES as exc:
            raise map_gemini_error(self._name, exc) from exc
        except AUTH_FAILURES as exc:  # a Vertex project's credentials (loaded by the SDK on its first call)
            raise vertex_auth_error(self._name, exc) from exc


def _probe(data: bytes) -> tuple[float, int | None, int | None] | None:
    """(seconds, width, height) of an MP4, or ``None`` when PyAV cannot read it."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = container.streams.video[0] if container.streams.video else None
            seconds = (container.duration or 0) / 1_000_000
            if stream is None or seconds <= 0:
                return None
            return seconds, stream.width, stream.height
    except (av.FFmpegError, IndexError, ValueError):
        return None


def _declared(operation: VideoOperation) -> tuple[float, int | None, int | None]:
    """What the request asked for, when the file says nothing (Veo's default: 8 s)."""
    state: dict[str, Any] = operation.state
    duration = state.get("duration_s")
    height = _HEIGHTS.get(str(state.get("resolution")))
    return float(duration if isinstance(duration, int | float) else 8), None, height
