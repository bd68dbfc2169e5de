"""The ledger's spill file: records round-trip through JSON lines, and claiming hands each line to one replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sqlalchemy.spill import SpillFile, record_from_json, record_to_json
from domain.usage import UsageRecord

_text = st.text(min_size=1, max_size=20)
_offsets = st.sampled_from([UTC, timezone(timedelta(hours=-8)), timezone(timedelta(hours=5, minutes=30))])
_records = st.builds(
    UsageRecord,
    request_id=_text,
    customer_id=_text,
    capability=st.sampled_from(["text", "image", "speech"]),
    provider=_text,
    model=_text,
    outcome=st.sampled_from(["done", "cancelled", "provider_error"]),
    created_at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_offsets),
    stream_id=st.none() | _text,
    input_tokens=st.integers(0, 10**9),
    cost_usd=st.floats(0, 1e6, allow_nan=False),
    ttft_ms=st.none() | st.floats(0, 1e6, allow_nan=False),
    fallback_used=st.none() | _text,
    id=_text,
)


@settings(max_examples=60)
@given(_records)
def test_records_round_trip_through_a_spill_line(record: UsageRecord) -> None:
    """Every field, including an offset-aware created_at and unicode text, survives one JSON line."""
    line = record_to_json(record)
    assert "\n" not in line
    assert record_from_json(line) == record


def _record(n: int) -> UsageRecord:
    return UsageRecord(f"r{n}", "alice", "text", "fake", "fake/echo", "done", datetime(2026, 11, 1, tzinfo=UTC))


def test_claim_moves_the_file_away_and_keeps_leftovers(tmp_path: Path) -> None:
    """claim() renames the spill file (new spills start a fresh one) and also returns interrupted replays."""
    spill = SpillFile(tmp_path / "usage-spill.jsonl")
    assert not spill.pending()
    assert spill.claim() == []
    spill.append([_record(1), _record(2)], sync=False)
    (first,) = spill.claim()
    assert not spill.path.exists()
    assert [record_from_json(line).request_id for line in first.read_text().splitlines()] == ["r1", "r2"]
    spill.append([_record(3)])
    claimed = spill.claim()
    assert len(claimed) == 2  # the leftover (still on disk: its replay never finished) and the new file
    assert first in claimed
    assert spill.pending()
