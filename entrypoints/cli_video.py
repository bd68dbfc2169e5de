"""Entrypoint: ``switchyard video``, a video job in-process (the same service and worker as the HTTP API), its
progress on stderr while it waits, the MP4 written where ``-o`` says.

The job is durable like any other: interrupted (Ctrl-C), it stays in the database and a running server (or the next
``switchyard video``) resumes it. The progress comes from the job's stream; when that stream ends while the job goes
on (its worker stopped), the command reads the job again and follows its current stream.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TextIO

from domain.types import CustomerId
from domain.video import FirstFrame, VideoJob, VideoRequest

__all__ = ["add_video_command"]

Runner = Callable[[Callable[[Any], Awaitable[int]]], Coroutine[Any, Any, int]]
_FRAME_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def _request(args: argparse.Namespace) -> VideoRequest:
    first_frame = None
    if args.first_frame:
        path = Path(args.first_frame)
        first_frame = FirstFrame(path.read_bytes(), _FRAME_TYPES.get(path.suffix.lower(), "application/octet-stream"))
    return VideoRequest(
        model=args.model,
        prompt=" ".join(args.prompt),
        first_frame=first_frame,
        negative_prompt=args.negative_prompt,
        duration_s=args.duration,
        aspect_ratio=args.aspect_ratio,
        resolution=args.resolution,
        seed=args.seed,
        audio=args.audio,
        fallbacks=tuple(args.fallback or ()),
        metadata=dict(item.split("=", 1) for item in args.meta or () if "=" in item),
    )


def _show(out: TextIO, job_id: str, status: str, progress: Any, started: float) -> None:
    elapsed = asyncio.get_running_loop().time() - started
    share = float(progress) if isinstance(progress, int | float) else None
    bar = "#" * round((share or 0.0) * 20)
    percent = f"{share * 100:3.0f}%" if share is not None else "  ?%"
    out.write(f"\r{job_id} {status:<9} [{bar:<20}] {percent} {elapsed:6.1f} s")
    out.flush()


async def _follow(container: Any, job: VideoJob, out: TextIO) -> VideoJob:
    """Print the job's progress until it ends, following it onto a new stream when it moved."""
    service = await container.video_service()
    manager = await container.streaming_manager()
    started = asyncio.get_running_loop().time()
    stream_id = None
    while not job.finished:
        if job.stream_id == stream_id:  # its stream ended but the job has not recorded its next one yet
            await asyncio.sleep(0.5)
        stream_id = job.stream_id
        _show(out, job.id, job.status, job.progress, started)
        async for event in manager.subscribe(stream_id, owner=job.owner):
            if event.type in ("queued", "progress"):
                _show(out, job.id, str(event.payload.get("status")), event.payload.get("progress"), started)
        job = await service.get(job.owner, job.id)
    _show(out, job.id, job.status, job.progress, started)
    out.write("\n")
    return job


def _command(run: Runner) -> Callable[[argparse.Namespace], int]:
    def film(args: argparse.Namespace) -> int:
        async def use(container: Any) -> int:
            service = await container.video_service()
            await container.video_worker()  # the worker of this process runs the job
            owner = CustomerId(args.customer)
            job = await service.submit(_request(args), owner)
            print(f"{job.id}: queued on {job.model}", file=sys.stderr)
            job = await _follow(container, job, sys.stderr)
            if job.result is None:
                error = job.error
                reason = f"{error.code}: {error.message}" if error is not None else job.status
                print(f"switchyard: video {job.id} {job.status}: {reason}", file=sys.stderr)
                return 1
            media = await container.media_store()
            path = Path(args.output or f"{job.id}.mp4")
            data = await media.read(owner, await service.content(owner, job.id))
            await asyncio.to_thread(path.write_bytes, data)
            print(path, flush=True)
            result = job.result
            print(
                f"[{job.served_by} · {result.duration_s:g} s · {result.width}x{result.height} · job {job.id}]",
                file=sys.stderr,
            )
            return 0

        return asyncio.run(run(use))

    return film


def add_video_command(commands: Any, *, run: Runner) -> None:
    """Register ``switchyard video`` on the CLI's sub-parsers; ``run`` runs a coroutine with a container."""
    video = commands.add_parser("video", help="make a video in-process (a durable job), showing its progress")
    video.add_argument("prompt", nargs="+", help="what to film")
    video.add_argument("--model", default="fake/video", help="provider/model, bare id or alias (default: fake/video)")
    video.add_argument("-o", "--output", default=None, help="file to write (default: <job id>.mp4)")
    video.add_argument("--duration", type=int, default=None, help="seconds (a length the model lacks lists its own)")
    video.add_argument("--aspect-ratio", default=None, help="e.g. 16:9 or 9:16")
    video.add_argument("--resolution", default=None, help="e.g. 720p")
    video.add_argument("--seed", type=int, default=None)
    video.add_argument("--negative-prompt", default=None)
    video.add_argument("--first-frame", default=None, help="a PNG or JPEG to start from")
    video.add_argument("--audio", action=argparse.BooleanOptionalAction, default=None, help="soundtrack on/off")
    video.add_argument("--fallback", action="append", help="a model to try if the first fails (repeatable)")
    video.add_argument("--meta", action="append", help="request metadata KEY=VALUE (repeatable)")
    video.add_argument("--customer", default="cli", help="customer id for usage records (default: cli)")
    video.set_defaults(func=_command(run))
