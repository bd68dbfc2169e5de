"""Driven adapter helper: the usage ledger's spill file (JSON lines), where records wait while the database is down.

Appends are single ``write`` calls of whole lines in append mode, so several workers may share one file. Replay
first renames the file to a unique ``*.replaying`` name (new spills then start a fresh file), reads it in chunks
through one open descriptor and deletes it at the end; whatever a reader could not write goes back into the spill
file. Records carry their id, and the ledger's insert ignores ids it already has, so reading a file twice (a crash
mid-replay, two workers starting together) never duplicates a row.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import structlog

from domain.usage import UsageRecord

__all__ = ["SpillFile", "record_from_json", "record_to_json"]

_log = structlog.get_logger("switchyard.ledger")


def record_to_json(record: UsageRecord) -> str:
    """One JSON line (without the newline) for ``record``."""
    data = attrs.asdict(record)
    data["created_at"] = record.created_at.isoformat()
    return json.dumps(data, separators=(",", ":"))


def record_from_json(line: str) -> UsageRecord:
    """The record of one spilled line; ``ValueError``/``TypeError``/``KeyError`` when it is not one."""
    data: dict[str, Any] = json.loads(line)
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    return UsageRecord(**data)


class SpillFile:
    """``<path>`` collects spilled records; ``<path>.<uuid>.replaying`` are files being (or left being) replayed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def rejected_path(self) -> Path:
        """Where unreadable lines are kept for a human (never silently dropped)."""
        return self.path.with_name(self.path.name + ".rejected")

    def append(self, records: Iterable[UsageRecord], *, sync: bool = True) -> int:
        """Append ``records``; returns how many."""
        lines = [record_to_json(record) + "\n" for record in records]
        if lines:
            self.append_lines(lines, sync=sync)
        return len(lines)

    def append_lines(self, lines: list[str], *, sync: bool = True) -> None:
        """Append raw lines (each ending in a newline) in one write; ``sync`` also fsyncs.

        A written line survives a crash of the process (it is in the OS's cache); ``fsync`` also survives a crash
        of the machine, at a cost in milliseconds, so the per-request path skips it and batch/shutdown spills sync.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, "".join(lines).encode())
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self) -> bool:
        """Whether anything waits to be replayed."""
        return self.path.exists() or any(self._leftovers())

    def _leftovers(self) -> Iterator[Path]:
        if self.path.parent.is_dir():
            yield from self.path.parent.glob(self.path.name + ".*.replaying")

    def claim(self) -> list[Path]:
        """Files to replay: the current spill file (renamed away) and any left by an interrupted replay."""
        claimed = list(self._leftovers())
        target = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}.replaying")
        try:
            self.path.rename(target)
        except FileNotFoundError:
            pass
        else:
            claimed.append(target)
        return claimed

    def reject(self, line: str) -> None:
        """Keep an unreadable line aside."""
        with self.rejected_path.open("a", encoding="utf-8") as file:
            file.write(line if line.endswith("\n") else line + "\n")
        _log.error("ledger_spill_line_rejected", path=str(self.rejected_path))
