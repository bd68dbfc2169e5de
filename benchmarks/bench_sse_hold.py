"""Benchmark: concurrent open SSE streams on one worker (issue 14's target: >= 5,000 held, every one seq-complete,
memory per idle stream reported).

One ``switchyard serve`` worker (fake vendor, logs at WARNING) and a load client in another process
(``benchmarks.sse_hold``: raw asyncio connections, uvloop). The client runs a warm-up wave of short streams, the
server's RSS is read (``VmRSS`` of ``/proc/<pid>/status``), then N streamed chats are opened, at most 128 opening at
a time, each one's fake vendor sending one word and then going silent: once the last stream has its first ``text``
event all N are mid-flight and idle at once, and the RSS is read again. Then every stream is cancelled through the
API and read to its end, and each must be seq-complete (ids 1..n, no gap or duplicate, exactly one terminal event:
``cancelled`` for the held streams, ``done`` for the warm-up). The hold ends by request, not by a clock, so a busy
machine makes the run slower, never wrong. The vendor idle timeout is raised for the run
(``SWITCHYARD_PROVIDERS_REQUEST_TIMEOUT_S``): on a busy machine the first streams may wait longer than its 60 s
default for the last ones to open, and a silent vendor past it is an error, not a held stream.

Baseline, same run, same client: a bare asyncio server (uvloop) answering with the same frames, holding each stream
on an ``asyncio.Event`` until its cancel request: the floor a Python server pays per open HTTP connection with a
waiting task behind it.

Every process raises its open-file soft limit to the hard limit; N is capped below the hard limit (said in the note
when it bites).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Final

from attrs import frozen

from benchmarks.harness import Result
from benchmarks.sse_hold import raise_nofile_limit
from tests.support.app import mint
from tests.support.server import free_port, running_server

__all__ = ["run"]

SUITE: Final = "sse_hold"
ROOT: Final = Path(__file__).resolve().parents[1]
OPENING: Final = 128  # streams opening at once (connected, first text event not yet received)
_FD_HEADROOM: Final = 256  # descriptors a process needs besides the streams (listener, database, pipes, imports)
_BASE: Final = "bare asyncio server (uvloop), same frames"


@frozen
class _Leg:
    """What one server did: the client's verdicts and the server's RSS around the hold, in KiB."""

    streams: int
    held: int  # mid-flight at once
    held_complete: int  # of those, seq-complete to their terminal event
    failed: int  # streams (warm-up included) not seq-complete, and cancel requests that failed
    problems: dict[str, int]
    open_s: float
    release_s: float
    rss_before_kib: int
    rss_held_kib: int
    rss_after_kib: int

    @property
    def kib_per_stream(self) -> float:
        return (self.rss_held_kib - self.rss_before_kib) / max(self.held, 1)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _line(stream: IO[str], phase: str) -> dict[str, Any]:
    raw = stream.readline()
    if not raw:
        raise RuntimeError(f"the load client ended before its {phase!r} line")
    message: dict[str, Any] = json.loads(raw)
    if message.get("phase") != phase:
        raise RuntimeError(f"expected the client's {phase!r} line, got {raw!r}")
    return message


def _say(stdin: IO[str], word: str) -> None:
    stdin.write(f"{word}\n")
    stdin.flush()


def _drive(port: int, server_pid: int, streams: int, warmup: int, token: str) -> _Leg:
    """Run the load client against the server on ``port`` and read ``server_pid``'s RSS around the hold."""
    command = [sys.executable, "-m", "benchmarks.sse_hold", "client", "--port", str(port)]
    command += ["--streams", str(streams), "--warmup", str(warmup), "--concurrency", str(OPENING)]
    client = subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "SSE_HOLD_TOKEN": token},
    )
    assert client.stdin is not None
    assert client.stdout is not None
    try:
        _line(client.stdout, "warm")
        time.sleep(0.5)  # the warm-up's connections close
        before = _rss_kib(server_pid)
        _say(client.stdin, "go")
        _line(client.stdout, "held")
        held = _rss_kib(server_pid)
        _say(client.stdin, "release")
        done = _line(client.stdout, "done")
        time.sleep(0.5)
        after = _rss_kib(server_pid)
    except BaseException:
        client.kill()
        raise
    finally:
        client.stdin.close()
        code = client.wait(timeout=60)
    if code != 0:
        raise RuntimeError(f"the load client exited with {code}")
    return _Leg(
        streams=streams,
        held=int(done["held"]),
        held_complete=int(done["held_complete"]),
        failed=int(done["failed"]),
        problems=dict(done["problems"]),
        open_s=float(done["open_s"]),
        release_s=float(done["release_s"]),
        rss_before_kib=before,
        rss_held_kib=held,
        rss_after_kib=after,
    )


def _switchyard(streams: int, warmup: int) -> _Leg:
    env = {"SWITCHYARD_LOGGING_LEVEL": "WARNING", "SWITCHYARD_PROVIDERS_REQUEST_TIMEOUT_S": "900"}
    with tempfile.TemporaryDirectory() as folder, running_server(Path(folder), env) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        return _drive(port, server.process.pid, streams, warmup, mint("bench"))


def _bare(streams: int, warmup: int) -> _Leg:
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.sse_hold", "bare", "--port", str(port)]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    try:
        if server.stdout.readline().strip() != "listening":
            raise RuntimeError("the bare baseline server did not start")
        return _drive(port, server.pid, streams, warmup, "bare")
    finally:
        server.terminate()
        server.wait(timeout=10)


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.0f}"


def _note(leg: _Leg) -> str:
    return (
        f"{leg.held:,}/{leg.streams:,} mid-flight at once, {leg.failed} failed; RSS {_mib(leg.rss_before_kib)} -> "
        f"{_mib(leg.rss_held_kib)} MiB held -> {_mib(leg.rss_after_kib)} MiB after they ended"
    )


def run(quick: bool = False) -> list[Result]:
    hard = raise_nofile_limit()
    wanted = 500 if quick else 5000
    streams = max(1, min(wanted, hard - _FD_HEADROOM))
    capped = f"; capped from {wanted:,} by the RLIMIT_NOFILE hard limit {hard:,}" if streams < wanted else ""
    warmup = 100 if quick else 200
    bare = _bare(streams, warmup)
    ours = _switchyard(streams, warmup)
    for name, leg in (("bare", bare), ("switchyard", ours)):
        print(f"  {name}: {leg}", flush=True)
    return [
        Result(
            SUITE,
            "SSE streams held at once on one worker, each seq-complete",
            ours.held_complete,
            "streams",
            baseline=bare.held_complete,
            baseline_name=_BASE,
            note=_note(ours) + capped,
        ),
        Result(
            SUITE,
            "failed SSE streams (not seq-complete) or cancels",
            ours.failed,
            "streams",
            note=f"must be 0; warm-up included; reasons: {ours.problems or 'none'}",
        ),
        Result(
            SUITE,
            "server memory per held idle SSE stream (RSS)",
            ours.kib_per_stream,
            "KiB",
            baseline=bare.kib_per_stream,
            baseline_name=_BASE,
            note=f"(RSS held - RSS before) / streams held; bare: {_note(bare)}",
        ),
        Result(
            SUITE,
            "time to open every stream (until each has its first text event)",
            ours.open_s,
            "s",
            baseline=bare.open_s,
            baseline_name=_BASE,
            note=f"{streams:,} streams, at most {OPENING} opening at a time; cancelling them all and reading each to "
            f"its end: {ours.release_s:.1f} s (bare {bare.release_s:.1f} s)",
        ),
    ]
