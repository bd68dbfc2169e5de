"""Driven adapter: SQLAlchemy implementation of ``UsageLedger`` (asyncpg in production, aiosqlite embedded).

``record`` never waits for the database: it gives the record an id and puts it on a bounded queue, which one
background task writes in batches (it lingers ``linger_s`` for a batch to gather, so a busy server writes a few
multi-row INSERTs per second rather than one per request). While the database is down the task retries its batch
with exponential backoff (capped, jittered); the queue keeps filling, and once it is full further records are
appended to the spill file, which is replayed after the next successful write (and at start). At shutdown the
queue is written, or spilled when the database still refuses after ``shutdown_timeout_s``. Inserts ignore ids
already present, so a retried or replayed batch never counts twice. No path drops a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path

import attrs
import structlog
from attrs import define, frozen
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.rows import NOT_ERRORS, group_key, insert_ignoring_duplicates, record_to_row, total_from_row
from adapters.sqlalchemy.spill import SpillFile, record_from_json
from adapters.sqlalchemy.tables import usage_records
from domain.errors import DatabaseError
from domain.usage import UsageRecord, UsageTotal
from ports.metrics import Metrics, NullMetrics
from ports.usage import GroupBy
from settings.model import DatabaseSettings

__all__ = ["LedgerOptions", "LedgerStats", "SqlAlchemyUsageLedger", "ledger_options", "usage_ledger_resource"]

_log = structlog.get_logger("switchyard.ledger")


@frozen
class LedgerOptions:
    """How the ledger buffers: queue bound (the memory bound), batch size, retry and shutdown timing."""

    spill_path: Path
    queue_size: int = 10_000
    batch_size: int = 500
    flush_interval_s: float = 1.0
    linger_s: float = 0.05
    """After the first record arrives, wait this long for more (unless a batch is full), so writes are batches."""
    retry_base_s: float = 0.5
    retry_max_s: float = 30.0
    write_timeout_s: float = 10.0
    shutdown_timeout_s: float = 5.0


@define
class LedgerStats:
    """What the ledger did so far (for tests and logs; metrics carry the same in production)."""

    written: int = 0
    batches: int = 0
    flush_failures: int = 0
    spilled: int = 0
    replayed: int = 0


class SqlAlchemyUsageLedger:
    """The usage ledger; ``start()`` launches the writer, ``aclose()`` flushes it (a container resource does both)."""

    def __init__(self, engine: AsyncEngine, options: LedgerOptions, metrics: Metrics | None = None) -> None:
        self._engine = engine
        self._options = options
        self._metrics: Metrics = metrics or NullMetrics()
        self._dialect = engine.dialect.name
        self._insert = insert_ignoring_duplicates(self._dialect)
        self._queue: asyncio.Queue[UsageRecord] = asyncio.Queue(maxsize=options.queue_size)
        self._spill = SpillFile(options.spill_path)
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        self._closing = False
        self._deadline = 0.0
        self._task: asyncio.Task[None] | None = None
        self._next_replay_at = 0.0
        self._replay_failures = 0
        self._spilled_since_replay = False
        self._next_spill_check = 0.0
        self.stats = LedgerStats()

    # --- the port --------------------------------------------------------------------------------------------------

    async def record(self, record: UsageRecord) -> None:
        """Queue ``record`` (spill it when the queue is full or the ledger is closing); never waits for I/O."""
        if not record.id:
            record = attrs.evolve(record, id=os.urandom(16).hex())  # as unique as uuid4().hex, a fifth of its cost
        if not self._closing:
            try:
                self._queue.put_nowait(record)
            except asyncio.QueueFull:
                pass
            else:
                self._metrics.gauge_add("ledger_queue_depth", 1.0)
                self._wakeup.set()
                return
        self._spill_records([record], sync=False)  # on the caller's path: no fsync (see SpillFile.append_lines)

    async def totals(
        self, customer_id: str, *, start: datetime | None, end: datetime | None, group_by: GroupBy
    ) -> list[UsageTotal]:
        """The customer's totals in ``[start, end)`` grouped by model, provider or UTC day (written records only)."""
        c = usage_records.c
        key = group_key(group_by, self._dialect).label("grp")
        errors = func.sum(case((c.outcome.in_(NOT_ERRORS), 0), else_=1))
        query = select(
            key,
            func.count().label("requests"),
            func.coalesce(errors, 0),
            func.coalesce(func.sum(c.input_tokens), 0),
            func.coalesce(func.sum(c.output_tokens), 0),
            func.coalesce(func.sum(c.cost_usd), 0.0),
            func.coalesce(func.sum(case((c.estimated, 1), else_=0)), 0),
            func.coalesce(func.sum(c.images), 0),
            func.coalesce(func.sum(c.characters), 0),
            func.coalesce(func.sum(c.audio_seconds), 0.0),
            func.coalesce(func.sum(c.video_seconds), 0.0),
        ).where(c.customer_id == customer_id)
        if start is not None:
            query = query.where(c.created_at >= start)
        if end is not None:
            query = query.where(c.created_at < end)
        query = query.group_by(key).order_by(key)
        try:
            async with asyncio.timeout(self._options.write_timeout_s), self._engine.connect() as connection:
                rows = (await connection.execute(query)).all()
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise DatabaseError("usage_totals", "could not read usage totals") from exc
        return [total_from_row(row) for row in rows]

    # --- lifetime --------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background writer (replays the spill file first)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="usage-ledger-writer")

    async def aclose(self) -> None:
        """Stop taking records into memory, write the queue (or spill it after ``shutdown_timeout_s``), stop."""
        if self._task is None:
            await self.start()
        self._closing = True
        self._deadline = asyncio.get_running_loop().time() + self._options.shutdown_timeout_s
        self._stop.set()
        self._wakeup.set()
        assert self._task is not None
        try:
            await self._task
        except Exception:  # noqa: BLE001 - the writer must never take records down with it: spill below
            _log.exception("ledger_writer_crashed")
        self._spill_records(self._drain_queue())

    # --- the writer ------------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        await self._replay()
        while True:
            if self._queue.empty():
                if self._closing:
                    return
                await self._idle()
                continue
            if self._queue.qsize() < self._options.batch_size and not self._closing:
                await self._pause(self._options.linger_s)  # let a batch gather; shutdown cuts this short
            await self._write(self._take(self._options.batch_size))

    def _take(self, limit: int) -> list[UsageRecord]:
        batch: list[UsageRecord] = []
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        if batch:
            self._metrics.gauge_add("ledger_queue_depth", -float(len(batch)))
        return batch

    def _drain_queue(self) -> list[UsageRecord]:
        return self._take(self._queue.qsize() + 1)

    async def _idle(self) -> None:
        self._wakeup.clear()
        if self._queue.empty():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._options.flush_interval_s):
                    await self._wakeup.wait()
        if self._replay_due():
            await self._replay()

    def _replay_due(self) -> bool:
        now = asyncio.get_running_loop().time()
        if now < self._next_replay_at:
            return False
        if self._spilled_since_replay:
            return True
        # Now and then look at the folder too: other workers sharing it may have spilled (cheap, but not per batch).
        if now >= self._next_spill_check:
            self._next_spill_check = now + self._options.flush_interval_s
            return self._spill.pending()
        return False

    async def _write(self, batch: list[UsageRecord]) -> None:
        attempt = 0
        try:
            while True:
                try:
                    await self._insert_records(batch)
                except DatabaseError as exc:
                    attempt += 1
                    self._note_failure(exc, attempt, len(batch))
                    loop_time = asyncio.get_running_loop().time()
                    if self._closing and loop_time >= self._deadline:
                        self._spill_records([*batch, *self._drain_queue()])
                        return
                    delay = self._backoff(attempt)
                    if self._closing:
                        delay = min(delay, self._deadline - loop_time)
                    await self._pause(delay)
                    continue
                break
        except asyncio.CancelledError:
            self._spill_records(batch)  # cancelled mid-write: keep it (a replay of a committed batch is a no-op)
            raise
        if attempt:
            _log.info("ledger_recovered", attempts=attempt + 1)
        self.stats.written += len(batch)
        self.stats.batches += 1
        self._metrics.increment("ledger_records_written_total", float(len(batch)))
        if self._replay_due():
            await self._replay()

    async def _pause(self, delay: float) -> None:
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                # Shutdown cuts a long backoff short; later pauses are bounded by the deadline instead.
                await (self._stop.wait() if not self._closing else asyncio.sleep(delay))

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._options.retry_max_s, self._options.retry_base_s * float(2 ** min(attempt - 1, 30)))
        return ceiling * random.uniform(0.5, 1.0)

    def _note_failure(self, exc: DatabaseError, attempt: int, records: int) -> None:
        self.stats.flush_failures += 1
        self._metrics.increment("ledger_flush_failures_total")
        log = _log.warning if attempt == 1 else _log.debug
        cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else None
        log("ledger_write_failed", operation=exc.operation, attempt=attempt, records=records, error=cause)

    async def _insert_records(self, records: Sequence[UsageRecord]) -> None:
        if not records:
            return
        rows = [record_to_row(record) for record in records]
        try:
            async with asyncio.timeout(self._options.write_timeout_s), self._engine.begin() as connection:
                await connection.execute(self._insert, rows)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise DatabaseError(
                "insert_usage", "could not write usage records", context={"records": len(rows)}
            ) from exc

    def _spill_records(self, records: Sequence[UsageRecord], *, sync: bool = True) -> None:
        if not records:
            return
        count = self._spill.append(records, sync=sync)
        self._spilled_since_replay = True
        self.stats.spilled += count
        self._metrics.increment("ledger_spilled_records_total", float(count))

    # --- spill replay ----------------------------------------------------------------------------------------------

    async def _replay(self) -> None:
        """Write every claimed spill file in batches; on a failure put the unwritten rest back and back off."""
        self._spilled_since_replay = False
        for path in self._spill.claim():
            try:
                handle = path.open(encoding="utf-8")
            except FileNotFoundError:  # another worker finished it
                continue
            with handle:
                while lines := list(itertools.islice(handle, self._options.batch_size)):
                    records = self._decode(lines)
                    try:
                        await self._insert_records(records)
                    except DatabaseError as exc:
                        self._spill.append_lines(lines)
                        while rest := list(itertools.islice(handle, self._options.batch_size)):
                            self._spill.append_lines(rest)
                        path.unlink(missing_ok=True)
                        self._spilled_since_replay = True
                        self._replay_failures += 1
                        self._note_failure(exc, self._replay_failures, len(records))
                        self._next_replay_at = asyncio.get_running_loop().time() + self._backoff(self._replay_failures)
                        return
                    self.stats.replayed += len(records)
                    self.stats.written += len(records)
                    self._metrics.increment("ledger_records_written_total", float(len(records)))
            path.unlink(missing_ok=True)
            _log.info("ledger_spill_replayed", file=path.name)
        self._replay_failures = 0

    def _decode(self, lines: list[str]) -> list[UsageRecord]:
        records: list[UsageRecord] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                records.append(record_from_json(line))
            except (ValueError, TypeError, KeyError):
                self._spill.reject(line)
        return records


async def usage_ledger_resource(
    engine: AsyncEngine, options: LedgerOptions, metrics: Metrics, schema_ready: object = None
) -> AsyncIterator[SqlAlchemyUsageLedger]:
    """Container resource: start the writer; at shutdown flush the queue. ``schema_ready`` only orders start-up."""
    del schema_ready
    ledger = SqlAlchemyUsageLedger(engine, options, metrics)
    await ledger.start()
    try:
        yield ledger
    finally:
        await ledger.aclose()


def ledger_options(database: DatabaseSettings, data_dir: Path) -> LedgerOptions:
    """Ledger options from ``database.ledger_*`` settings; the spill file lives in ``app.data_dir``."""
    return LedgerOptions(
        spill_path=data_dir / "usage-spill.jsonl",
        queue_size=database.ledger_queue_size,
        batch_size=database.ledger_batch_size,
        flush_interval_s=database.ledger_flush_interval_s,
        retry_max_s=database.ledger_retry_max_s,
        shutdown_timeout_s=database.ledger_shutdown_timeout_s,
    )
