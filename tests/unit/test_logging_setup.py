"""structlog setup: JSON lines with redaction, the rotating file, and noisy libraries held at WARNING."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from adapters.structlog.setup import NOISY_LOGGERS, configure_logging
from settings.model import LoggingSettings


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    structlog.reset_defaults()


def test_json_lines_go_to_the_rotating_file_redacted(tmp_path: Path) -> None:
    """format=json writes one JSON object per line to the configured file, with secrets masked and context bound."""
    log_file = tmp_path / "logs" / "switchyard.log"
    configure_logging(LoggingSettings(format="json", file_path=log_file, file_max_bytes=10_000, file_backup_count=2))
    structlog.contextvars.bind_contextvars(request_id="req-1")
    try:
        structlog.get_logger("switchyard.test").info("vendor_called", api_key="sk-live-abcdefghijkl", size=3)
        logging.getLogger("some.library").warning("token=hunter2hunter2 in a library message")
    finally:
        structlog.contextvars.clear_contextvars()
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    ours = next(line for line in lines if line["event"] == "vendor_called")
    assert ours["api_key"] == "[REDACTED]"
    assert ours["request_id"] == "req-1"
    assert ours["level"] == "info"
    library = next(line for line in lines if "library message" in line["event"])
    assert "hunter2hunter2" not in library["event"]


def test_the_file_rotates_at_its_size_bound(tmp_path: Path) -> None:
    """Past file_max_bytes the file is rotated, keeping file_backup_count old files."""
    log_file = tmp_path / "switchyard.log"
    configure_logging(LoggingSettings(format="json", file_path=log_file, file_max_bytes=2_000, file_backup_count=2))
    log = structlog.get_logger("switchyard.test")
    for i in range(200):
        log.info("filler_event", index=i, padding="x" * 40)
    rotated = sorted(p.name for p in tmp_path.iterdir())
    assert rotated == ["switchyard.log", "switchyard.log.1", "switchyard.log.2"]


def test_noisy_libraries_are_held_at_warning() -> None:
    """httpx, sqlalchemy, asyncio and friends log at WARNING unless asked otherwise."""
    configure_logging(LoggingSettings(level="DEBUG", noisy_level="WARNING"))
    for name in ("httpx", "sqlalchemy", "asyncio", "PIL", "botocore", "hpack"):
        assert name in NOISY_LOGGERS
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("switchyard.anything").getEffectiveLevel() == logging.DEBUG


def test_stdlib_extra_fields_reach_the_line_redacted(tmp_path: Path) -> None:
    """The core logs with the stdlib and ``extra=``: those fields are rendered (and redacted) like structlog's own."""
    log_file = tmp_path / "switchyard.log"
    configure_logging(LoggingSettings(format="json", file_path=log_file))
    logging.getLogger("switchyard.breakers").warning(
        "breaker_state_changed", extra={"model": "openai/gpt-4o", "to_state": "open", "api_key": "sk-hunter2hunter2"}
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    line = next(line for line in lines if line["event"] == "breaker_state_changed")
    assert (line["model"], line["to_state"]) == ("openai/gpt-4o", "open")
    assert line["api_key"] == "[REDACTED]"
