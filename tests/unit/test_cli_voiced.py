"""``switchyard chat --speech``: the text printed as it arrives, the voiced segments written to ``-o`` as one file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import pytest

from adapters.fake.speech import CHARACTER_SECONDS
from entrypoints.cli import main
from tests.support.app import TEST_SECRET

STORY = ["Once", "upon", "a", "time.", "The", "end!"]


@pytest.fixture(autouse=True)
def _test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "ELEVENLABS_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWITCHYARD_ENV", "test")
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SWITCHYARD_AUTH_JWT_SECRET", TEST_SECRET.reveal())
    monkeypatch.setenv("SWITCHYARD_HTTP_METRICS_ENABLED", "false")


def _seconds(path: Path) -> float:
    with av.open(io.BytesIO(path.read_bytes()), mode="r", format="mp3") as container:
        samples = sum(int(frame.samples) for packet in container.demux(audio=0) for frame in packet.decode())
        return samples / 24_000


def test_voiced_chat_prints_the_text_and_writes_one_playable_mp3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's example: the answer on stdout, both segments joined into one MP3 as long as the spoken text (plus
    each segment's encoder padding), a summary on stderr."""
    out = tmp_path / "reply.mp3"
    argv = ["chat", "--speech", "fake/speech", "--voice", "alloy", "-o", str(out), *STORY]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == " ".join(STORY)
    assert "2 segments" in captured.err
    assert "fake/speech alloy" in captured.err
    spoken = len("Once upon a time.") + len("The end!")
    assert _seconds(out) == pytest.approx(spoken * CHARACTER_SECONDS + 2 * 0.054, abs=0.03)  # ~54 ms padding each


def test_json_lines_show_every_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` prints each event with its seq; audio lines say the size of their bytes."""
    out = tmp_path / "reply.aac"
    assert main(["chat", "--speech", "fake/speech", "--json", "-o", str(out), "Hi", "there."]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["type"] == "done"
    audio = [line for line in lines if line["type"] == "audio"]
    assert audio
    assert audio[0]["payload"]["format"] == "aac"
    assert sum(line.get("data_bytes", 0) for line in audio) == out.stat().st_size


def test_bad_speech_fails_before_any_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown voice is refused naming ``speech.voice``; a WAV output is refused (segments cannot be joined)."""
    out = tmp_path / "never.mp3"
    assert main(["chat", "--speech", "fake/speech", "--voice", "bogus", "-o", str(out), "hi"]) == 1
    assert capsys.readouterr().err.startswith("switchyard: validation_error: speech.voice:")
    assert not out.exists()
    assert main(["chat", "--speech", "fake/speech", "-o", str(tmp_path / "x.wav"), "hi"]) == 1
    assert "validation_error: output:" in capsys.readouterr().err
