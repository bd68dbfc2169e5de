"""``switchyard transcribe`` transcribes an audio file in-process: the text (or segments, or JSON) on stdout, the
model, duration and cost on stderr, and one line for a refusal."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from entrypoints.cli import _progress, main
from tests.support.app import TEST_SECRET
from tests.support.audio_clips import encoded, tone_wav


@pytest.fixture(autouse=True)
def _test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "ELEVENLABS_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWITCHYARD_ENV", "test")
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SWITCHYARD_AUTH_JWT_SECRET", TEST_SECRET.reveal())
    monkeypatch.setenv("SWITCHYARD_HTTP_METRICS_ENABLED", "false")


def test_transcribe_prints_the_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A WAV file: its transcript on stdout (fake/transcribe is the default model), model, duration and cost on
    stderr; the same audio as MP3 reads the same."""
    clip = tmp_path / "clip.wav"
    clip.write_bytes(tone_wav(1.5))
    assert main(["transcribe", str(clip)]) == 0
    out, err = capsys.readouterr()
    text = out.strip()
    assert text
    assert "fake/transcribe · 1.5 s of audio · $0.000150" in err
    assert main(["transcribe", "--json", "--timestamps", "word", "--model", "fake-stt", str(clip)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["data"]["text"] == text
    assert printed["data"]["words"]
    assert printed["meta"]["model"] == "fake/transcribe"


def test_segments_are_printed_with_their_timings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--timestamps segment`` prints one line per segment with its start and end."""
    clip = tmp_path / "long.mp3"
    clip.write_bytes(encoded(tone_wav(4.0), "mp3"))
    assert main(["transcribe", "--timestamps", "segment", str(clip)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # ten words, eight to a segment
    assert lines[0].startswith("[    0.00 ->")


def test_refusals_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not audio is 415-like ``unsupported_media_type``; a missing file exits 2; an unknown model exits 1."""
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert main(["transcribe", str(notes)]) == 1
    assert capsys.readouterr().err.startswith("switchyard: unsupported_media_type: file:")
    assert main(["transcribe", str(tmp_path / "missing.wav")]) == 2
    assert "cannot read" in capsys.readouterr().err
    clip = tmp_path / "clip.wav"
    clip.write_bytes(tone_wav(0.5))
    assert main(["transcribe", "--model", "fake/nope", str(clip)]) == 1
    assert capsys.readouterr().err.startswith("switchyard: not_found:")


async def test_progress_rewrites_one_line_until_cancelled() -> None:
    """The progress line names the file and the elapsed time, and is wiped when the transcript is in."""
    stream = io.StringIO()
    ticker = asyncio.create_task(_progress("transcribing long.wav", stream))
    await asyncio.sleep(0.3)
    ticker.cancel()
    await asyncio.gather(ticker, return_exceptions=True)
    written = stream.getvalue()
    assert "\rtranscribing long.wav [#" in written
    assert written.endswith("\r")
