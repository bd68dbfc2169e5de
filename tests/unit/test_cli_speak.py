"""``switchyard speak`` runs the speech service in-process and writes the audio to a file as it streams."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest

from adapters.fake.speech import CHARACTER_SECONDS
from entrypoints.cli import main
from tests.support.app import TEST_SECRET


@pytest.fixture(autouse=True)
def _test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "ELEVENLABS_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWITCHYARD_ENV", "test")
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SWITCHYARD_AUTH_JWT_SECRET", TEST_SECRET.reveal())
    monkeypatch.setenv("SWITCHYARD_HTTP_METRICS_ENABLED", "false")


def _decoded(path: Path) -> tuple[str, float]:
    with av.open(io.BytesIO(path.read_bytes()), mode="r") as container:
        stream = container.streams.audio[0]
        samples = sum(int(frame.samples) for frame in container.decode(stream))
        return container.format.name, samples / stream.codec_context.sample_rate


def test_speak_writes_a_playable_mp3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's example: an MP3 as long as the text, and a summary line on stderr."""
    out = tmp_path / "hello.mp3"
    assert main(["speak", "--model", "fake/speech", "--voice", "alloy", "hello", "-o", str(out)]) == 0
    demuxer, seconds = _decoded(out)
    assert demuxer == "mp3"
    assert seconds == pytest.approx(5 * CHARACTER_SECONDS, abs=0.12)
    err = capsys.readouterr().err
    assert "fake/speech" in err
    assert "5 characters" in err


def test_the_output_extension_picks_the_format(tmp_path: Path) -> None:
    """``-o clip.wav`` without ``--format`` writes WAV; ``.ogg`` writes Ogg Opus."""
    wav, ogg = tmp_path / "clip.wav", tmp_path / "clip.ogg"
    assert main(["speak", "good", "morning", "-o", str(wav)]) == 0
    assert main(["speak", "good", "morning", "-o", str(ogg)]) == 0
    demuxer, seconds = _decoded(wav)
    assert demuxer == "wav"
    assert seconds == pytest.approx(12 * CHARACTER_SECONDS, abs=0.01)
    assert _decoded(ogg)[0] == "ogg"


def test_a_refused_request_writes_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad voice fails before any audio: exit 1 with the field named, and no empty file left behind."""
    out = tmp_path / "never.mp3"
    assert main(["speak", "--voice", "bogus", "hi", "-o", str(out)]) == 1
    assert capsys.readouterr().err.startswith("switchyard: validation_error: voice:")
    assert not out.exists()


def test_a_clip_cut_short_keeps_its_audio_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A vendor failure after audio started keeps what arrived in the file and exits 1 with the error."""
    out = tmp_path / "cut.wav"
    text = "a rather long sentence to speak [[fake fake_error=overloaded fake_fail_after=2]]"
    assert main(["speak", text, "-o", str(out)]) == 1
    assert "provider_error" in capsys.readouterr().err
    assert out.stat().st_size > 0
