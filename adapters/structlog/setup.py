"""Driven adapter: configure structlog (and route stdlib logging through it) once, as a container resource."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Iterator
from typing import Any, Final

import structlog

from adapters.structlog.redaction import drop_websocket_noise, redact_event, redact_exception, summarise_binary
from settings.model import LoggingSettings

__all__ = ["NOISY_LOGGERS", "configure_logging", "logging_resource"]

NOISY_LOGGERS: Final = (
    "httpx",
    "httpx2",
    "httpcore",
    "hpack",
    "h2",
    "h11",
    "sqlalchemy",
    "sqlalchemy.engine",
    "aiosqlite",
    "asyncio",
    "PIL",
    "botocore",
    "urllib3",
    "openai",
    "anthropic",
    "google_genai",
    "websockets",
    "hypercorn.access",
    "alembic",
)
# structlog's processor chain, filled in place by every ``configure_logging``: with ``cache_logger_on_first_use`` a
# logger keeps the list it was first used with, so a reconfiguration (tests, a second container) must reach it there.
_PROCESSORS: Final[list[Any]] = []


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        # The services log through the stdlib with ``extra=`` (the core imports no structlog): keep those fields,
        # before redaction sees them.
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        drop_websocket_noise,
        summarise_binary,
        redact_event,
    ]


def configure_logging(settings: LoggingSettings) -> None:
    """Install structlog processors and a stdlib handler so library logs get the same redaction and format."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared = _shared_processors()
    _PROCESSORS[:] = [
        structlog.stdlib.filter_by_level,
        *shared,
        structlog.processors.format_exc_info,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]
    structlog.configure(
        processors=_PROCESSORS,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Module-level loggers assemble themselves once, not on every call (a logger used before this point was
        # never cached: the flag was off).
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            # Both chains redacted every field already (``shared``); only the traceback text is new here.
            redact_exception,
            renderer,
        ],
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.file_path is not None:
        settings.file_path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                settings.file_path, maxBytes=settings.file_max_bytes, backupCount=settings.file_backup_count
            )
        )
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_switchyard", False):
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._switchyard = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(settings.level.upper())
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(settings.noisy_level.upper())


def logging_resource(settings: LoggingSettings) -> Iterator[None]:
    """Container resource: configure on init; flush handlers on shutdown."""
    configure_logging(settings)
    yield
    for handler in logging.getLogger().handlers:
        handler.flush()
