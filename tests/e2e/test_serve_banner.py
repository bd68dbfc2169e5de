"""`switchyard serve` says "listening" only once it answers, prints the `export TOKEN=...` line `make run` users paste,
and a start that fails for a known reason (the database unreachable) ends with one line, no banner, no traceback."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.app import TEST_SECRET
from tests.support.server import free_port

_ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_") and not k.endswith("_API_KEY")}
    env.update({"SWITCHYARD_APP_DATA_DIR": str(tmp_path), "SWITCHYARD_LOGGING_LEVEL": "WARNING", **extra})
    return env


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start(started: list[subprocess.Popen[str]], env: dict[str, str], port: int) -> queue.Queue[str | None]:
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "serve", "--port", str(port)],
        env=env,
        cwd=_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started.append(process)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _next(lines: queue.Queue[str | None], deadline: float) -> str | None:
    return lines.get(timeout=max(0.1, deadline - time.monotonic()))


def test_the_banner_comes_once_the_server_answers_with_an_export_line(
    tmp_path: Path, serve: list[subprocess.Popen[str]]
) -> None:
    """Right when "listening on" is printed, /health answers; the token lines follow, `export TOKEN=` included."""
    port = free_port()
    lines = _start(serve, _env(tmp_path, SWITCHYARD_ENV="local"), port)
    deadline = time.monotonic() + 60
    printed: list[str] = []
    while not any("listening on" in line for line in printed):
        line = _next(lines, deadline)
        assert line is not None, "\n".join(printed)
        printed.append(line)
    assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=2.0).status_code == 200  # no retry: it must answer
    while not any(line.startswith("  export TOKEN=") for line in printed):
        line = _next(lines, deadline)
        assert line is not None, "\n".join(printed)
        printed.append(line)
    token = next(line for line in printed if line.startswith("  export TOKEN=")).removeprefix("  export TOKEN=")
    models = httpx.get(f"http://127.0.0.1:{port}/api/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert models.status_code == 200
    assert any(line.endswith(f"127.0.0.1:{port}/playground") for line in printed)


def test_an_unreachable_database_stops_the_start_with_one_line(
    tmp_path: Path, serve: list[subprocess.Popen[str]]
) -> None:
    """PostgreSQL refusing connections: exit 1, the reason in one line, no banner and no traceback."""
    env = _env(
        tmp_path,
        SWITCHYARD_ENV="test",
        SWITCHYARD_AUTH_JWT_SECRET=TEST_SECRET.reveal(),
        SWITCHYARD_DATABASE_URL="postgresql+asyncpg://bob:hunter2@127.0.0.1:1/sy",
    )
    lines = _start(serve, env, free_port())
    deadline = time.monotonic() + 60
    printed: list[str] = []
    while (line := _next(lines, deadline)) is not None:
        printed.append(line)
    assert serve[0].wait(timeout=10) == 1
    output = "\n".join(printed)
    assert "listening on" not in output
    assert "Traceback" not in output
    assert printed[-1].startswith(
        "switchyard: database_error: could not upgrade the database schema of "
        "postgresql+asyncpg://bob:***@127.0.0.1:1/sy: ConnectionRefusedError: "
    )
    assert "hunter2" not in output
