"""Driven adapter: ``FakeVideoProvider``, a VideoProvider whose operations finish after a set time and whose videos
are real, playable MP4 files (H.264, with an AAC tone when ``audio`` is on), encoded by PyAV.

The frames are a colour gradient whose colours come from a hash of the prompt and the seed and which drifts frame by
frame, so another prompt gives another video. The operation keeps everything it needs in its ``state`` (when it
started, when it is done, what to film), so a process that never saw the submission (after a restart, another
instance) polls and fetches it alike. Sizes are small on purpose (``"240p"`` is 426x240 at 16:9): cheap to encode.

Behaviour comes from ``metadata`` (or the entry's ``default_params``), as for the other fakes: ``fake_finish_s``
(seconds until the operation is done; default 2), ``fake_error`` at submission (``rate_limited``,
``provider_error``, ``overloaded``, ``timeout``, ``auth``, ``content_policy``; ``fake_retry_after`` for a 429,
``fake_fail_times = N`` to fail only the first N submissions with the same ``fake_key``), ``fake_operation_error``
(``provider_error`` or ``content_policy``: the operation fails once done) and ``fake_cut_times = N`` (the first N
downloads of an operation are cut short, as a dropped connection would).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

import av
from av.audio.resampler import AudioResampler
from PIL import Image

from adapters.fake.faults import FailureCounter, scripted_fault
from domain.catalog import ModelSpec
from domain.errors import (
    ContentPolicyError,
    ProviderError,
    ValidationError,
)
from domain.types import JsonValue
from domain.video import GeneratedVideo, VideoOperation, VideoOperationError, VideoPoll, VideoRequest

__all__ = ["FAKE_HEIGHTS", "FAKE_VIDEO_ERRORS", "FakeVideoProvider", "render_mp4"]

FAKE_VIDEO_ERRORS: Final = ("rate_limited", "provider_error", "overloaded", "timeout", "auth", "content_policy")
FAKE_HEIGHTS: Final = {"144p": 144, "240p": 240, "360p": 360}
"""The fake's resolutions (small: the fake encodes for real)."""
_RATIOS: Final = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}
_DEFAULTS: Final = {"duration_s": 4, "aspect_ratio": "16:9", "resolution": "240p"}
_FPS: Final = 12
_AUDIO_RATE: Final = 24_000
POLICY_REASON: Final = "fake: the video was refused under the content policy"


def _dimensions(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    across, down = _RATIOS[aspect_ratio]
    short = FAKE_HEIGHTS[resolution]
    long = 2 * round(short * max(across, down) / min(across, down) / 2)  # H.264 with 4:2:0 wants even sides
    return (long, short) if across >= down else (short, long)


def render_mp4(prompt: str, *, seed: int | None, duration_s: int, size: tuple[int, int], audio: bool) -> bytes:
    """An MP4 (H.264 at 12 fps, ``+faststart`` so a player can begin before the end arrives) of a drifting gradient
    coloured by ``prompt`` and ``seed``, with a quiet tone as its soundtrack when ``audio``."""
    digest = hashlib.sha256(f"{seed}|{prompt}".encode()).digest()
    width, height = size
    ramp = Image.linear_gradient("L").resize((width, height))
    across = Image.linear_gradient("L").rotate(90).resize((width, height))
    # The muxer's faststart pass re-reads its output by name: a real file, not a buffer.
    with tempfile.TemporaryDirectory(prefix="fake-video-") as folder:
        path = os.path.join(folder, "video.mp4")
        with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            video = container.add_stream("libx264", rate=_FPS)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.options = {"preset": "ultrafast", "crf": "32"}
            sound = container.add_stream("aac", rate=_AUDIO_RATE) if audio else None
            for index in range(duration_s * _FPS):
                shift = index * 4
                level = Image.new("L", (width, height), (digest[0] + shift) % 256)
                red = ramp.point(lambda v, k=digest[1] + shift: (v + k) % 256)
                blue = across.point(lambda v, k=digest[2]: (v + k) % 256)
                picture = Image.merge("RGB", (red, level, blue))
                frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]  # PyAV leaves it unannotated
                for packet in video.encode(frame):
                    container.mux(packet)
            for packet in video.encode(None):
                container.mux(packet)
            if sound is not None:
                _tone(container, sound, duration_s, 220 + digest[3])
        with open(path, "rb") as file:
            return file.read()


def _tone(container: Any, stream: Any, duration_s: int, pitch: int) -> None:
    count = _AUDIO_RATE * duration_s
    pcm = struct.pack(
        f"<{count}h", *(int(2000 * math.sin(2 * math.pi * pitch * k / _AUDIO_RATE)) for k in range(count))
    )
    frame = av.AudioFrame(format="s16", layout="mono", samples=count)
    frame.planes[0].update(pcm)
    frame.sample_rate, frame.pts = _AUDIO_RATE, 0
    for converted in AudioResampler(format="fltp", layout="mono", rate=_AUDIO_RATE).resample(frame):
        for packet in stream.encode(converted):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


class FakeVideoProvider:
    """The ``fake`` vendor's ``VideoProvider``; ``clock`` (wall-clock seconds) is injectable for unit tests."""

    def __init__(self, *, name: str = "fake", clock: Callable[[], float] = time.time) -> None:
        self._name = name
        self._clock = clock
        self._submissions = FailureCounter()
        self._downloads: dict[str, int] = {}
        self.calls = 0

    @property
    def name(self) -> str:
        """The provider id in the catalog."""
        return self._name

    async def submit(self, request: VideoRequest, model: ModelSpec) -> VideoOperation:
        """Start an operation that is done ``fake_finish_s`` from now, or raise the scripted fault."""
        self.calls += 1
        failure = self._submissions.failure(
            lambda key: _option(request.metadata, model, key), f"{model.qualified_id}:{request.prompt}"
        )
        if failure is not None:
            retry_after = _option(request.metadata, model, "fake_retry_after")
            raise scripted_fault(
                self._name, failure, float(retry_after) if retry_after is not None else None, kinds=FAKE_VIDEO_ERRORS
            )
        settings = _settings(request, model)
        finish_s = float(_option(request.metadata, model, "fake_finish_s") or 2.0)
        state: dict[str, JsonValue] = {
            "started": self._clock(),
            "finish_s": finish_s,
            "prompt": request.prompt,
            "seed": request.seed,
            **settings,
            "operation_error": _option(request.metadata, model, "fake_operation_error"),
            "cut_times": int(_option(request.metadata, model, "fake_cut_times") or 0),
        }
        return VideoOperation(f"fake-operations/{uuid.uuid4().hex}", state)

    async def poll(self, operation: VideoOperation, model: ModelSpec) -> VideoPoll:
        """Done once ``fake_finish_s`` has passed (progress is the share of it gone by); a scripted operation
        error is raised once done."""
        state = operation.state
        elapsed = self._clock() - float(_number(state, "started"))
        finish_s = float(_number(state, "finish_s"))
        if elapsed < finish_s:
            return VideoPoll(False, round(max(0.0, elapsed / finish_s), 3) if finish_s > 0 else None)
        failure = state.get("operation_error")
        if failure == "content_policy":
            raise ContentPolicyError(self._name, POLICY_REASON)
        if failure is not None:
            raise VideoOperationError(self._name, f"{self._name}: the video generation failed")
        return VideoPoll(True, 1.0)

    async def fetch(self, operation: VideoOperation, model: ModelSpec) -> GeneratedVideo:
        """The operation's MP4; the first ``fake_cut_times`` downloads end early (a retryable ``ProviderError``)."""
        state = operation.state
        seen = self._downloads.get(operation.name, 0)
        self._downloads[operation.name] = seen + 1
        if seen < int(_number(state, "cut_times")):
            raise ProviderError(self._name, f"{self._name}: the download was cut short", retryable=True)
        duration_s = int(_number(state, "duration_s"))
        size = _dimensions(str(state["aspect_ratio"]), str(state["resolution"]))
        seed = state.get("seed")
        data = await asyncio.to_thread(
            render_mp4,
            str(state["prompt"]),
            seed=int(seed) if isinstance(seed, int) else None,
            duration_s=duration_s,
            size=size,
            audio=bool(state.get("audio")),
        )
        return GeneratedVideo(data, "video/mp4", float(duration_s), size[0], size[1])


def _option(metadata: Mapping[str, str], model: ModelSpec, key: str) -> Any:
    return metadata[key] if key in metadata else model.default_params.get(key)


def _number(state: Mapping[str, JsonValue], key: str) -> float:
    value = state.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProviderError("fake", f"fake: the operation's state lacks {key!r}")
    return float(value)


def _settings(request: VideoRequest, model: ModelSpec) -> dict[str, JsonValue]:
    """The request's choices, checked against what the fake films (the service checked the catalog's lists)."""
    duration = request.duration_s if request.duration_s is not None else _DEFAULTS["duration_s"]
    ratio = request.aspect_ratio or str(_DEFAULTS["aspect_ratio"])
    resolution = request.resolution or str(_DEFAULTS["resolution"])
    if ratio not in _RATIOS:
        raise ValidationError("aspect_ratio", f"{model.qualified_id} films {', '.join(_RATIOS)}")
    if resolution not in FAKE_HEIGHTS:
        raise ValidationError("resolution", f"{model.qualified_id} films {', '.join(FAKE_HEIGHTS)}")
    if not isinstance(duration, int) or not 1 <= duration <= 20:
        raise ValidationError("duration_s", f"{model.qualified_id} films 1 to 20 seconds")
    return {"duration_s": duration, "aspect_ratio": ratio, "resolution": resolution, "audio": bool(request.audio)}
